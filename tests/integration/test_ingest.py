"""What one webhook costs the API, and several API processes sharing one database.

- An accepted webhook costs one database transaction (a single insert) and its body is
  decoded once and validated once; the answer waits for nothing else (Temporal is
  unreachable here, so no relay touches the database meanwhile).
- A relay round starts a whole batch of events with two transactions: the claim and
  the settling of the lot.
- Two `commerce-sync api` processes on one database: the same event delivered to both
  at once is recorded once, answered 202 by one and 200 by the other, and started once.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, event
from temporalio.client import Client

from commerce_sync.api.app import create_app
from commerce_sync.config.pairs import load_pairs
from commerce_sync.config.settings import Settings
from commerce_sync.intake.bodies import StoreEvent
from commerce_sync.intake.links import TemporalLink
from commerce_sync.intake.proofs import sign_standard_webhook
from commerce_sync.intake.relay import relay_once
from commerce_sync.store.events import find_event, record_event
from sandboxes.server import BackgroundServer
from tests.integration.orders.order_stack import eventually, stack_settings

PAIR = "kentico-brightpearl"


def unused_port() -> int:
    """A port nothing listens on (Temporal "down" for an API pointed at it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def order_created(order_id: str) -> bytes:
    body = {
        "type": "order.created",
        "timestamp": datetime.now(UTC).isoformat(),
        "data": {"id": order_id, "store": "kentico"},
    }
    return json.dumps(body).encode()


def signed(secret: str, body: bytes, msg_id: str | None = None) -> dict[str, str]:
    headers = sign_standard_webhook(
        secret, msg_id or f"msg_{uuid.uuid4().hex}", datetime.now(UTC), body
    )
    return {**headers, "content-type": "application/json"}


class Transactions:
    """Every transaction on an engine, as the statements it ran (SQLAlchemy events)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.open: dict[int, list[str]] = {}
        self.done: list[list[str]] = []
        self.listening = False

    def _begin(self, connection: Any) -> None:
        self.open[id(connection)] = []

    def _statement(self, connection: Any, _c: Any, statement: str, *_: Any) -> None:
        self.open.setdefault(id(connection), []).append(" ".join(statement.split()))

    def _commit(self, connection: Any) -> None:
        self.done.append(self.open.pop(id(connection), []))

    def __enter__(self) -> Transactions:
        event.listen(self.engine, "begin", self._begin)
        event.listen(self.engine, "before_cursor_execute", self._statement)
        event.listen(self.engine, "commit", self._commit)
        return self

    def __exit__(self, *_: object) -> None:
        event.remove(self.engine, "begin", self._begin)
        event.remove(self.engine, "before_cursor_execute", self._statement)
        event.remove(self.engine, "commit", self._commit)


@pytest.fixture
def api_without_temporal(sandbox_url: str, tmp_path: Path) -> Iterator[tuple[Settings, Any, str]]:
    """The API in this process (a real HTTP server), its Temporal address unreachable."""
    settings = stack_settings(
        sandbox_url,
        f"sqlite:///{tmp_path / 'commerce-sync.db'}",
        tmp_path,
        f"127.0.0.1:{unused_port()}",
    )
    app = create_app(settings)
    with BackgroundServer(app) as server:
        yield settings, app, server.url


async def test_an_accepted_webhook_costs_one_transaction_and_one_parse(
    api_without_temporal: tuple[Settings, Any, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, app, url = api_without_temporal
    secret = settings.webhooks.kentico
    assert secret is not None
    body = order_created(uuid.uuid4().hex[:10])
    headers = signed(secret.get_secret_value(), body)

    decoded: list[bytes] = []
    validated: list[object] = []
    loads, validate = json.loads, StoreEvent.model_validate

    def counting_loads(text: Any, *args: Any, **kwargs: Any) -> Any:
        if text == body:
            decoded.append(text)
        return loads(text, *args, **kwargs)

    def counting_validate(cls: type[StoreEvent], /, obj: Any, **kwargs: Any) -> StoreEvent:
        validated.append(obj)
        return validate(obj, **kwargs)

    monkeypatch.setattr(json, "loads", counting_loads)  # the module the receiver decodes with
    monkeypatch.setattr(StoreEvent, "model_validate", classmethod(counting_validate))
    engine: Engine = app.state.engine
    async with httpx.AsyncClient(timeout=10.0) as http:
        with Transactions(engine) as seen:
            answer = await http.post(f"{url}/webhooks/kentico", content=body, headers=headers)
        assert answer.status_code == 202, answer.text
        # The retention's first round may run meanwhile (deletes only): not the webhook's.
        ours = [t for t in seen.done if not all(s.startswith("DELETE") for s in t)]
        assert len(ours) == 1, seen.done
        [statements] = ours
        assert len(statements) == 1 and statements[0].startswith("INSERT INTO webhook_events")
        # SQLite keeps its one write lock until a RETURNING statement's rows are fetched
        # (store/events.py): the receivers' insert has none.
        assert "RETURNING" not in statements[0].upper()
        assert len(decoded) == 1 and len(validated) == 1

        again = await http.post(f"{url}/webhooks/kentico", content=body, headers=headers)
        assert again.status_code == 200 and again.json() == answer.json()
    recorded = find_event(engine, "kentico", headers["webhook-id"])
    assert recorded is not None and recorded.status == "received"  # waits for Temporal


def _link(client: Client) -> TemporalLink:
    async def connect() -> Client:
        return client

    link = TemporalLink(connect)
    link.client = client
    return link


async def test_a_relay_round_starts_a_batch_with_two_transactions(
    temporal_client: Client, engine: Engine, settings: Settings
) -> None:
    pairs = load_pairs(settings.pairs_file)
    queue = f"ingest-test-{uuid.uuid4().hex[:8]}"  # no worker: a start is all this needs
    order_ids = [uuid.uuid4().hex[:10] for _ in range(25)]
    recorded_ids = {}
    for order_id in order_ids:
        event, new = record_event(
            engine,
            source="kentico",
            event_id=f"msg_{order_id}",
            event_type="order.created",
            workflow_id=f"order:{PAIR}:{order_id}",
            payload={"body": json.loads(order_created(order_id))},
        )
        assert new
        recorded_ids[order_id] = event.id
    with Transactions(engine) as seen:
        done = await relay_once(engine, _link(temporal_client), pairs, queue)
    assert (done.claimed, done.started, done.waiting) == (25, 25, 0)
    assert len(seen.done) == 2, seen.done  # the claim, and the lot marked started
    if engine.dialect.name == "sqlite":  # the claim's rows are read after it commits
        assert not [s for statements in seen.done for s in statements if "RETURNING" in s]
    for order_id in order_ids:
        recorded = find_event(engine, "kentico", f"msg_{order_id}")
        assert recorded is not None and recorded.id == recorded_ids[order_id]
        assert (recorded.status, recorded.start_attempts) == ("started", 1)
        handle = temporal_client.get_workflow_handle(f"order:{PAIR}:{order_id}")
        await handle.terminate("test over")
    # Nothing is left to claim: the next round touches nothing but the claim.
    again = await relay_once(engine, _link(temporal_client), pairs, queue)
    assert again.claimed == 0


class ApiProcess:
    """`commerce-sync api` as its own process, as deployed."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = unused_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(log, "ab")  # closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "commerce_sync.cli", "api", "--port", str(self.port)],
            env={**env, "COMMERCE_SYNC_API_WORKERS": "1"},
            stdout=self.log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

    async def ready(self, http: httpx.AsyncClient) -> bool:
        assert self.process.poll() is None, "the API exited at start"
        try:
            return (await http.get(f"{self.url}/readyz")).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)
        self.log.close()


@pytest.fixture
async def two_apis(
    temporal_client: Client, tmp_path: Path
) -> AsyncIterator[tuple[list[ApiProcess], str, Path]]:
    secret = "whsec_" + "c2hhcmVkLWJ5LXR3by1hcGktcHJvY2Vzc2Vz"
    database = tmp_path / "commerce-sync.db"
    env = {
        **os.environ,
        "COMMERCE_SYNC_USE_SANDBOXES": "true",
        "COMMERCE_SYNC_DATA_DIR": str(tmp_path),
        "COMMERCE_SYNC_DATABASE_URL": f"sqlite:///{database}",
        "COMMERCE_SYNC_TEMPORAL_ADDRESS": temporal_client.service_client.config.target_host,
        "COMMERCE_SYNC_TASK_QUEUE": f"ingest-test-{uuid.uuid4().hex[:8]}",
        "COMMERCE_SYNC_WEBHOOKS__KENTICO": secret,
    }
    apis = [ApiProcess(env, tmp_path / f"api-{index}.log") for index in range(2)]
    try:
        async with httpx.AsyncClient(timeout=5.0) as http:

            async def both_ready() -> bool:
                return all([await api.ready(http) for api in apis])

            await eventually(both_ready, 60, "both API processes ready")
        yield apis, secret, database
    finally:
        for api in apis:
            api.stop()


async def test_two_api_processes_record_and_start_a_repeated_event_once(
    two_apis: tuple[list[ApiProcess], str, Path], temporal_client: Client
) -> None:
    apis, secret, database = two_apis
    order_id = uuid.uuid4().hex[:10]
    body = order_created(order_id)
    headers = signed(secret, body)
    workflow_id = f"order:{PAIR}:{order_id}"
    async with httpx.AsyncClient(timeout=10.0) as http:
        # The same delivery to both processes at once, then once more to each.
        answers = await asyncio.gather(
            *(
                http.post(f"{api.url}/webhooks/kentico", content=body, headers=headers)
                for api in apis
            )
        )
        assert sorted(a.status_code for a in answers) == [200, 202], [a.text for a in answers]
        assert answers[0].json() == answers[1].json()
        assert answers[0].json() == {"event_id": headers["webhook-id"], "workflow_id": workflow_id}
        for api in apis:
            resent = await http.post(f"{api.url}/webhooks/kentico", content=body, headers=headers)
            assert resent.status_code == 200 and resent.json() == answers[0].json()

    def rows() -> list[tuple[str, int]]:
        with sqlite3.connect(database, timeout=30) as db:
            return list(db.execute("SELECT status, start_attempts FROM webhook_events"))

    async def started() -> list[tuple[str, int]] | None:
        found = await asyncio.to_thread(rows)
        return found if found and all(status == "started" for status, _ in found) else None

    assert await eventually(started, 30, "a relay to start the event") == [("started", 1)]
    run = await temporal_client.get_workflow_handle(workflow_id).describe()

    async def listed() -> list[str] | None:
        query = f'WorkflowId = "{workflow_id}"'
        found = [each.run_id async for each in temporal_client.list_workflows(query)]
        return found or None

    assert await eventually(listed, 30, "the run in the visibility store") == [run.run_id]
    await temporal_client.get_workflow_handle(workflow_id, run_id=run.run_id).terminate("over")
