"""Search attributes set on every run, so the Temporal Web UI finds any order (docs/design.md §2)."""

from temporalio.common import SearchAttributeKey

INTEGRATION_PAIR = SearchAttributeKey.for_keyword("IntegrationPair")
STORE_ORDER_ID = SearchAttributeKey.for_keyword("StoreOrderId")
ERP_ORDER_ID = SearchAttributeKey.for_keyword("ErpOrderId")
CUSTOMER_EMAIL = SearchAttributeKey.for_keyword("CustomerEmail")
SYNC_STATE = SearchAttributeKey.for_keyword("SyncState")

ALL_KEYS = (INTEGRATION_PAIR, STORE_ORDER_ID, ERP_ORDER_ID, CUSTOMER_EMAIL, SYNC_STATE)


def dev_server_flags() -> list[str]:
    """`temporal server start-dev` flags that register every key as a Keyword."""
    flags: list[str] = []
    for key in ALL_KEYS:
        flags += ["--search-attribute", f"{key.name}=Keyword"]
    return flags
