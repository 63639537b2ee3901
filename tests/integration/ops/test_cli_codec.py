"""Commands run beside `up` read what its children wrote: with the codec keys `up`
generated into the data dir (and nothing in the environment naming them), `commerce-sync
approve` decodes the run's encrypted answer instead of failing on it (after the
approval was already applied)."""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from temporalio.client import Client

from commerce_sync.config.settings import CodecSettings
from commerce_sync.ops.codec import ENCODING, codec_keys_path
from commerce_sync.ops.temporal_client import connect
from sandboxes.embedded import ensure_codec_keys
from tests.integration.orders.order_stack import (
    API_KEY,
    PAIRS,
    Stack,
    running_stack,
    stack_settings,
)
from tests.integration.orders.test_order_approval import place_risky_order, run_command


@pytest.fixture
async def stack_with_generated_keys(
    temporal_client: Client,
    sandbox_url: str,
    sandboxes: httpx.AsyncClient,
    tmp_path: Path,
) -> AsyncIterator[Stack]:
    """The order stack as `up` runs it: keys generated into the data dir, handed to the
    API and the worker only."""
    target = temporal_client.service_client.config.target_host
    settings = stack_settings(sandbox_url, f"sqlite:///{tmp_path / 'cs.db'}", tmp_path, target)
    keys = ensure_codec_keys(settings)
    assert keys == codec_keys_path(settings)
    settings = settings.model_copy(update={"codec": CodecSettings(keys_file=keys)})
    async with running_stack(settings, await connect(settings), sandboxes) as running:
        yield running


async def test_commands_beside_up_decode_with_the_generated_keys(
    stack_with_generated_keys: Stack, tmp_path: Path
) -> None:
    stack = stack_with_generated_keys
    pair = "kentico-brightpearl"
    store, _ = PAIRS[pair]
    order_id = await place_risky_order(stack, store, "total_over")
    await stack.wait_state(pair, order_id, "awaiting_approval")
    workflow_id = f"order:{pair}:{order_id}"
    history = await stack.client.get_workflow_handle(workflow_id).fetch_history()
    encrypted = base64.b64encode(ENCODING).decode()  # metadata values are base64 in JSON
    assert encrypted in json.dumps(history.to_json_dict())  # really encrypted

    env = {
        "COMMERCE_SYNC_DATA_DIR": str(tmp_path),  # where `up` keeps its keys; nothing else
        "COMMERCE_SYNC_TEMPORAL_ADDRESS": stack.client.service_client.config.target_host,
        "COMMERCE_SYNC_TEMPORAL_NAMESPACE": stack.client.namespace,
        "COMMERCE_SYNC_API_KEYS": json.dumps({API_KEY: ["read", "operate"]}),
    }
    command = [sys.executable, "-m", "commerce_sync.cli"]
    approved = await run_command(
        *command, "approve", pair, order_id, "--by", "ops", env=env, cwd=tmp_path
    )
    assert approved.returncode == 0, approved.stderr
    assert "approved by ops" in approved.stdout
    await stack.wait_state(pair, order_id, "awaiting_shipment")
