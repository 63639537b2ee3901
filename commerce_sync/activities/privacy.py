"""What a workflow may show outside its encrypted payloads, decided where the keys are."""

from __future__ import annotations

from commerce_sync.config.settings import Settings
from commerce_sync.contracts.activities import Codec, implements
from commerce_sync.ops.codec import customer_email_search_value, key_ring


class PrivacyActivities:
    def __init__(self, settings: Settings) -> None:
        self._ring = key_ring(settings)

    @implements(Codec.email_search_value)
    async def email_search_value(self, email: str) -> str:
        """The `CustomerEmail` search attribute for `email` (search attributes are not
        encrypted): the email without codec keys, else its keyed hash, or "" for none."""
        return customer_email_search_value(self._ring, email)
