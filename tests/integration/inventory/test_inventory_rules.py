"""The `inventory` rules of a pair in pairs.toml: validated at start-up, every bad value
named with its key and the reason."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from commerce_sync.config.pairs import PairsConfigError, load_pairs

PAIR = '[pairs.p]\nstore = "kentico"\nerp = "{erp}"\ncurrencies = ["USD"]\n'


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pairs.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_packaged_pairs_gather_stock_webhooks_for_five_seconds() -> None:
    for pair in load_pairs().values():
        rules = pair.inventory
        assert rules.gather_window == timedelta(seconds=5)
        assert rules.incremental_every == timedelta(minutes=5)
        assert rules.order_lookback >= pair.approval.reject_after
        assert 1 <= rules.batch_size <= 200


@pytest.mark.parametrize(
    ("erp", "inventory", "key", "reason"),
    [
        ("acumatica", 'gather_window = "PT11M"', "pairs.p.inventory", "gather_window"),
        ("acumatica", 'incremental_every = "PT30S"', "pairs.p.inventory", "incremental_every"),
        ("acumatica", 'retry_after = "PT0S"', "pairs.p.inventory", "retry_after"),
        ("acumatica", "attempts = 0", "pairs.p.inventory.attempts", "greater than or equal"),
        ("acumatica", "batch_size = 501", "pairs.p.inventory.batch_size", "less than or equal"),
        ("brightpearl", "batch_size = 300", "pairs.p", "inventory.batch_size"),
        ("brightpearl", 'order_lookback = "PT1H"', "pairs.p", "approval.reject_after"),
    ],
)
def test_bad_inventory_rules_are_named(
    tmp_path: Path, erp: str, inventory: str, key: str, reason: str
) -> None:
    path = write(tmp_path, PAIR.format(erp=erp) + f"[pairs.p.inventory]\n{inventory}\n")
    with pytest.raises(PairsConfigError) as refused:
        load_pairs(path)
    assert refused.value.key == key
    assert reason in refused.value.reason
    assert "\n" not in str(refused.value)
