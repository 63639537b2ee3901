"""What a feed's read records as its last error (shown by `GET /feeds` and the feed
metrics): a system's failure, but not a read whose call budget handed its place back
before anything was sent (issue #15: a hand-back is not a failure)."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

import pytest
from sqlalchemy import Engine
from temporalio.client import Client

from commerce_sync.activities.feeds import FeedActivities, ReadChanges
from commerce_sync.config.pairs import PairConfig, load_pairs
from commerce_sync.config.settings import Settings
from commerce_sync.contracts.feeds import FeedPoll
from commerce_sync.intake.missing_runs import Outcome
from commerce_sync.store.feeds import feed_states
from commerce_sync.systems.errors import BudgetQueued, ConnectorError, TransientError

PAIR = "kentico-brightpearl"


def failing_read(error: ConnectorError) -> ReadChanges:
    async def read(pair: PairConfig, since: datetime) -> tuple[int, Counter[Outcome]]:
        raise error

    return read


@pytest.mark.parametrize(
    ("error", "recorded"),
    [
        (TransientError("kentico", "server error", status=503), "kentico (HTTP 503): server error"),
        (BudgetQueued("kentico", "call budget: still queued when this attempt ends"), ""),
    ],
    ids=["system failure", "budget hand-back"],
)
async def test_only_a_real_failure_becomes_the_feeds_last_error(
    temporal_client: Client,
    settings: Settings,
    engine: Engine,
    error: ConnectorError,
    recorded: str,
) -> None:
    feeds = FeedActivities(temporal_client, engine, settings, load_pairs(None), stores={}, erps={})
    with pytest.raises(type(error)):
        await feeds._read(FeedPoll(pair=PAIR, entity="orders"), failing_read(error))

    (state,) = feed_states(engine)
    assert state.last_success_at is None
    assert state.last_error == recorded
    assert (state.last_error_at is None) == (recorded == "")
