"""How often a pair's change feed reads: every minute when the store sends no webhooks
(the feed is the intake), every quarter hour when it does (a safety net)."""

from __future__ import annotations

from datetime import timedelta

from pydantic import SecretStr

from commerce_sync.commands.feeds import feed_interval, store_sends_webhooks
from commerce_sync.config.pairs import default_pairs_path, load_pairs
from commerce_sync.config.settings import Settings, WebhookSecrets


def test_the_feed_is_the_intake_without_webhooks_and_a_safety_net_with_them() -> None:
    pairs = load_pairs(default_pairs_path())
    kentico, xcart = pairs["kentico-brightpearl"], pairs["xcart-acumatica"]
    only_kentico = Settings(_env_file=None, webhooks=WebhookSecrets(kentico=SecretStr("whsec_x")))
    assert store_sends_webhooks(only_kentico, kentico)
    assert not store_sends_webhooks(only_kentico, xcart)
    assert feed_interval(only_kentico, kentico) == timedelta(minutes=15)
    assert feed_interval(only_kentico, xcart) == timedelta(minutes=1)


def test_the_catalog_feed_follows_the_erp_s_webhooks() -> None:
    pairs = load_pairs(default_pairs_path())
    kentico, xcart = pairs["kentico-brightpearl"], pairs["xcart-acumatica"]
    only_brightpearl = Settings(
        _env_file=None, webhooks=WebhookSecrets(brightpearl_token=SecretStr("token"))
    )
    assert feed_interval(only_brightpearl, kentico, "catalog") == timedelta(minutes=15)
    assert feed_interval(only_brightpearl, xcart, "catalog") == timedelta(minutes=1)
    # The store of the same pair sends none: its orders are read every minute.
    assert feed_interval(only_brightpearl, kentico, "orders") == timedelta(minutes=1)
