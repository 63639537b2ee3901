"""How each webhook source proves itself (docs/project-contracts.md §1). Pure functions.

- Kentico and X-Cart: Standard Webhooks (`webhook-id`, `webhook-timestamp`,
  `webhook-signature` = `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`),
  timestamps more than five minutes off refused.
- Brightpearl: signs nothing; a secret token in the registered `uriTemplate` path.
- Acumatica: a static header configured on the push notification.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from datetime import datetime

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

ACUMATICA_TOKEN_HEADER = "X-Commerce-Sync-Token"


class WebhookProofError(Exception):
    """The delivery did not prove where it came from; the message says why (no secrets)."""


def sign_standard_webhook(
    secret: str, msg_id: str, timestamp: datetime, body: bytes
) -> dict[str, str]:
    """Headers a Standard Webhooks sender attaches (used by the store sandboxes and tests)."""
    signature = Webhook(secret).sign(msg_id, timestamp, body.decode())
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": signature,
    }


def verify_standard_webhook(secret: str, headers: Mapping[str, str], body: bytes) -> None:
    """Raises `WebhookProofError` unless id, timestamp (within 5 min) and signature check out."""
    lowered = {key.lower(): value for key, value in headers.items()}
    for name in ("webhook-id", "webhook-timestamp", "webhook-signature"):
        if not lowered.get(name):
            raise WebhookProofError(f"missing header {name}")
    try:
        Webhook(secret).verify(body, lowered, json_parse=False)
    except WebhookVerificationError as exc:
        raise WebhookProofError(str(exc)) from None


def verify_token(expected: str, given: str | None) -> None:
    """Constant-time comparison of a shared secret (Brightpearl URI token, Acumatica header)."""
    if not given or not hmac.compare_digest(expected.encode(), given.encode()):
        raise WebhookProofError("token does not match")
