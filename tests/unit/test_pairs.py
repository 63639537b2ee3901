from decimal import Decimal
from pathlib import Path

import pytest

from commerce_sync.config.pairs import PairsConfigError, default_pairs_path, load_pairs


def test_packaged_pairs_define_both_integration_pairs() -> None:
    pairs = load_pairs()
    assert set(pairs) == {"kentico-brightpearl", "xcart-acumatica"}
    kb = pairs["kentico-brightpearl"]
    assert (kb.store, kb.erp) == ("kentico", "brightpearl")
    assert kb.risk.total_over == Decimal("1000.00")
    assert kb.approval.escalate_after.total_seconds() == 4 * 3600
    xa = pairs["xcart-acumatica"]
    assert (xa.store, xa.erp) == ("xcart", "acumatica")
    assert xa.acumatica.return_order_type == "RC"
    assert kb.duplicate_check_after.total_seconds() == xa.duplicate_check_after.total_seconds()
    assert kb.duplicate_check_after.total_seconds() == 120


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pairs.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "key", "reason"),
    [
        (
            '[pairs.p]\nstore = "shopify"\nerp = "brightpearl"\ncurrencies = ["USD"]\n',
            "pairs.p.store",
            "kentico",
        ),
        (
            '[pairs.p]\nstore = "kentico"\nerp = "brightpearl"\ncurrencies = ["USD"]\n'
            '[pairs.p.risk]\ntotal_over = "a lot"\n',
            "pairs.p.risk.total_over",
            "decimal",
        ),
        (
            '[pairs.p]\nstore = "kentico"\nerp = "brightpearl"\ncurrencies = ["USD"]\n'
            "[pairs.p.inventory]\nsafety_stok = 3\n",
            "pairs.p.inventory.safety_stok",
            "not permitted",
        ),
        (
            '[pairs.p]\nstore = "kentico"\nerp = "brightpearl"\ncurrencies = []\n',
            "pairs.p.currencies",
            "at least 1",
        ),
        (
            '[pairs.p]\nstore = "kentico"\nerp = "brightpearl"\ncurrencies = ["USD"]\n'
            '[pairs.p.approval]\nescalate_after = "PT5H"\nreject_after = "PT1H"\n',
            "pairs.p.approval",
            "escalate_after",
        ),
        (
            '[pairs.p]\nstore = "kentico"\nerp = "brightpearl"\ncurrencies = ["USD"]\n'
            'duplicate_check_after = "PT2H"\n',
            "pairs.p",
            "duplicate_check_after must be between 1 second and 1 hour",
        ),
    ],
)
def test_invalid_pairs_name_file_key_and_reason(
    tmp_path: Path, text: str, key: str, reason: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(PairsConfigError) as caught:
        load_pairs(path)
    assert caught.value.key == key
    assert reason in caught.value.reason
    assert str(path) in str(caught.value)
    assert "\n" not in str(caught.value)


def test_unparseable_and_missing_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(PairsConfigError, match="not valid TOML"):
        load_pairs(write(tmp_path, "[pairs.p\n"))
    with pytest.raises(PairsConfigError, match="file not found"):
        load_pairs(tmp_path / "nope.toml")
    with pytest.raises(PairsConfigError, match="no pair defined"):
        load_pairs(write(tmp_path, "# empty\n"))


def test_default_path_is_inside_the_package() -> None:
    assert default_pairs_path().name == "pairs.toml"
    assert default_pairs_path().exists()
