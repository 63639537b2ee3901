"""What a workflow may show outside its encrypted payloads, decided where the keys are."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from temporalio import activity

from commerce_sync.config.settings import Settings
from commerce_sync.ops.codec import customer_email_search_value, key_ring


class PrivacyActivities:
    def __init__(self, settings: Settings) -> None:
        self._ring = key_ring(settings)

    def all(self) -> list[Callable[..., Any]]:
        return [self.email_search_value]

    @activity.defn(name="codec.email_search_value")
    async def email_search_value(self, email: str) -> str:
        """The `CustomerEmail` search attribute for `email` (search attributes are not
        encrypted): the email without codec keys, else its keyed hash, or "" for none."""
        return customer_email_search_value(self._ring, email)
