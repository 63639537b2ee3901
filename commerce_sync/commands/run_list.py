"""Listing runs from Temporal visibility, filtered by process, state, pair and status, one
page at a time: what `GET /runs` and `commerce-sync runs list` share.

Filters are checked against what exists (the process labels of `ops.metrics.PROCESSES`,
the states those processes record in `SyncState`, the configured pairs) and every value is
quoted as a string literal that cannot end early: a value holding a quote, a backslash or
a control character is refused (the dev server's visibility does not match such values
even when escaped, so refusing loses nothing).

Paging uses Temporal's own next-page token, handed out sealed: `base64url(tag || token)`,
the tag an HMAC over the query and the token. Temporal answers a malformed token with a
retryable `Unknown` error that the SDK keeps retrying for many seconds, and a token used
with other filters would page through the wrong list; a sealed token that does not verify
is refused at once (422 naming `page_token`) and never reaches Temporal. The key is derived
from the deployment's API keys and namespace, so every API replica (and the CLI with the
same settings) accepts the others' tokens.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

from pydantic import BaseModel, Field
from temporalio.client import Client, WorkflowExecution
from temporalio.service import RPCError

from commerce_sync.config.settings import Settings
from commerce_sync.contracts import search_attributes as sa
from commerce_sync.contracts.catalog import CatalogState
from commerce_sync.contracts.inventory import InventoryState
from commerce_sync.contracts.orders import SyncState
from commerce_sync.contracts.returns import ReturnState
from commerce_sync.ops.metrics import PROCESSES

WORKFLOW_TYPES = {label: workflow_type for workflow_type, label in PROCESSES.items()}
"""process label -> workflow type"""

PROCESS_STATES: dict[str, tuple[str, ...]] = {
    "order": tuple(state.value for state in SyncState),
    "return": tuple(state.value for state in ReturnState),
    "catalog": tuple(state.value for state in CatalogState),
    "inventory": tuple(state.value for state in InventoryState),
}
"""The states each process records in the `SyncState` search attribute; the others record none."""

ALL_STATES = tuple(sorted({state for states in PROCESS_STATES.values() for state in states}))
MAX_LIMIT = 200
TEMPORAL_ANSWER_S = 10.0
_TAG = 16


def web_ui_link(settings: Settings, workflow_id: str) -> str:
    namespace = quote(settings.temporal_namespace, safe="")
    return f"{settings.web_ui_url}/namespaces/{namespace}/workflows/{quote(workflow_id, safe='')}"


class RunFilterError(ValueError):
    """A filter or paging parameter that cannot be used; `field` names it."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field, self.reason = field, reason


class TemporalUnanswered(RuntimeError):
    """Temporal did not answer the listing (down, or too slow)."""


@dataclass(frozen=True)
class RunFilters:
    process: str | None = None
    state: str | None = None
    pair: str | None = None
    running: bool | None = None
    task_queue: str | None = None

    def check(self, pairs: Mapping[str, object]) -> None:
        """Refuse a value that names nothing that exists (RunFilterError naming the field)."""
        if self.process is not None and self.process not in WORKFLOW_TYPES:
            raise RunFilterError(
                "process", f"{self.process!r} is not one of {', '.join(WORKFLOW_TYPES)}"
            )
        if self.state is not None:
            known = PROCESS_STATES.get(self.process, ()) if self.process else ALL_STATES
            if self.process is not None and not known:
                raise RunFilterError("state", f"process {self.process!r} records no state")
            if self.state not in known:
                raise RunFilterError("state", f"{self.state!r} is not one of {', '.join(known)}")
        if self.pair is not None and self.pair not in pairs:
            raise RunFilterError(
                "pair", f"{self.pair!r} is not a configured pair ({', '.join(sorted(pairs))})"
            )
        if self.task_queue is not None:
            literal("task_queue", self.task_queue)

    def query(self) -> str:
        """The visibility query; empty when nothing is filtered."""
        terms: list[str] = []
        if self.process is not None:
            terms.append(f"WorkflowType = {literal('process', WORKFLOW_TYPES[self.process])}")
        if self.pair is not None:
            terms.append(f"{sa.INTEGRATION_PAIR.name} = {literal('pair', self.pair)}")
        if self.state is not None:
            terms.append(f"{sa.SYNC_STATE.name} = {literal('state', self.state)}")
        if self.running is not None:
            terms.append(f'ExecutionStatus {"=" if self.running else "!="} "Running"')
        if self.task_queue is not None:
            terms.append(f"TaskQueue = {literal('task_queue', self.task_queue)}")
        return " AND ".join(terms)


def literal(field: str, value: str) -> str:
    """`value` as a double-quoted visibility string literal; RunFilterError when it cannot be."""
    if not value or len(value) > 1000:
        raise RunFilterError(field, "must be 1 to 1000 characters")
    if any(char in "\"'\\" or ord(char) < 32 or ord(char) == 127 for char in value):
        raise RunFilterError(field, "must not hold quotes, backslashes or control characters")
    return f'"{value}"'


class RunSummary(BaseModel):
    workflow_id: str
    run_id: str
    process: str = Field(description="the process label (order, return, ...) or the workflow type")
    pair: str | None = Field(description="the IntegrationPair search attribute")
    state: str | None = Field(description="the SyncState search attribute, when the run has one")
    run_status: str = Field(description="Temporal's status: RUNNING, COMPLETED, FAILED, ...")
    task_queue: str
    start_time: datetime
    close_time: datetime | None
    web_ui: str


class RunPage(BaseModel):
    runs: list[RunSummary]
    next_page_token: str | None = Field(
        description="pass as `page_token` for the next page; null on the last "
        "(the page before may be full and this one empty)"
    )


def summary(execution: WorkflowExecution, settings: Settings) -> RunSummary:
    attributes = execution.typed_search_attributes
    return RunSummary(
        workflow_id=execution.id,
        run_id=execution.run_id,
        process=PROCESSES.get(execution.workflow_type, execution.workflow_type),
        pair=attributes.get(sa.INTEGRATION_PAIR),
        state=attributes.get(sa.SYNC_STATE),
        run_status=execution.status.name if execution.status else "UNKNOWN",
        task_queue=execution.task_queue,
        start_time=execution.start_time,
        close_time=execution.close_time,
        web_ui=f"{web_ui_link(settings, execution.id)}/{quote(execution.run_id, safe='')}",
    )


def _key(settings: Settings) -> bytes:
    material = "\0".join(
        ["commerce-sync runs page", settings.temporal_namespace, *settings.api_keys]
    )
    return hashlib.sha256(material.encode()).digest()


def _tag(settings: Settings, query: str, raw: bytes) -> bytes:
    return hmac.new(_key(settings), query.encode() + b"\0" + raw, hashlib.sha256).digest()[:_TAG]


def seal_token(settings: Settings, query: str, raw: bytes) -> str:
    return base64.urlsafe_b64encode(_tag(settings, query, raw) + raw).decode().rstrip("=")


def open_token(settings: Settings, query: str, token: str) -> bytes:
    """Temporal's token inside a sealed one; RunFilterError when it is not one we handed out
    for this query."""
    try:
        sealed = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raise RunFilterError("page_token", "is not a page token") from None
    tag, raw = sealed[:_TAG], sealed[_TAG:]
    if not raw or not hmac.compare_digest(tag, _tag(settings, query, raw)):
        raise RunFilterError(
            "page_token", "was not handed out for these filters: start from the first page"
        )
    return raw


async def list_page(
    client: Client,
    settings: Settings,
    filters: RunFilters,
    *,
    limit: int,
    page_token: str | None = None,
) -> RunPage:
    """One page of runs in Temporal's visibility order (newest first).

    RunFilterError for a bad page token; TemporalUnanswered when Temporal refuses or cannot
    answer within TEMPORAL_ANSWER_S (the SDK retries an unavailable server on its own)."""
    query = filters.query()
    raw = open_token(settings, query, page_token) if page_token else None
    listing = client.list_workflows(query, page_size=limit, next_page_token=raw)
    try:
        await asyncio.wait_for(listing.fetch_next_page(), timeout=TEMPORAL_ANSWER_S)
    except TimeoutError:
        raise TemporalUnanswered(f"no answer within {TEMPORAL_ANSWER_S:g}s") from None
    except RPCError as exc:
        raise TemporalUnanswered(exc.message) from None
    executions = listing.current_page or []
    following = listing.next_page_token
    return RunPage(
        runs=[summary(execution, settings) for execution in executions],
        next_page_token=seal_token(settings, query, following) if following else None,
    )
