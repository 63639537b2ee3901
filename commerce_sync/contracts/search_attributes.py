"""Search attributes set on every run, so the Temporal Web UI finds any order (docs/design.md §2)."""

from temporalio.common import SearchAttributeIndexedValueType, SearchAttributeKey

INTEGRATION_PAIR = SearchAttributeKey.for_keyword("IntegrationPair")
STORE_ORDER_ID = SearchAttributeKey.for_keyword("StoreOrderId")
ERP_ORDER_ID = SearchAttributeKey.for_keyword("ErpOrderId")
CUSTOMER_EMAIL = SearchAttributeKey.for_keyword("CustomerEmail")
SYNC_STATE = SearchAttributeKey.for_keyword("SyncState")
# The anomaly checks an order was flagged by (`OrderFlags IS NOT NULL` lists them all).
ORDER_FLAGS = SearchAttributeKey.for_keyword_list("OrderFlags")

ALL_KEYS = (INTEGRATION_PAIR, STORE_ORDER_ID, ERP_ORDER_ID, CUSTOMER_EMAIL, SYNC_STATE, ORDER_FLAGS)

# The Temporal CLI's names of the types used here (`--search-attribute Name=Type`).
CLI_TYPE_NAMES = {
    SearchAttributeIndexedValueType.KEYWORD: "Keyword",
    SearchAttributeIndexedValueType.KEYWORD_LIST: "KeywordList",
}


def dev_server_flags() -> list[str]:
    """`temporal server start-dev` flags that register every key with its type."""
    flags: list[str] = []
    for key in ALL_KEYS:
        flags += ["--search-attribute", f"{key.name}={CLI_TYPE_NAMES[key.indexed_value_type]}"]
    return flags
