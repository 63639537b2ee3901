"""Integration pairs: which store feeds which ERP, and the rules and lookups of each.

A pair is configuration, not code. `load_pairs` validates the whole file and refuses
to start on the first problem with the file, the key and the reason
(`PairsConfigError`), so a typo never becomes a silent default.
"""

from __future__ import annotations

import tomllib
import weakref
from importlib import resources
from pathlib import Path

from pydantic import ConfigDict, ValidationError

from commerce_sync.domain.pair_rules import PairRules
from commerce_sync.systems.acumatica.lookups import AcumaticaLookups
from commerce_sync.systems.brightpearl.lookups import BrightpearlLookups
from commerce_sync.systems.kentico.lookups import KenticoLookups
from commerce_sync.systems.xcart.lookups import XCartLookups


class PairConfig(PairRules):
    """A pair as pairs.toml gives it: its rules and each system's lookups. Strict: an
    unknown key is a typo, refused at start."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kentico: KenticoLookups = KenticoLookups()
    xcart: XCartLookups = XCartLookups()
    brightpearl: BrightpearlLookups = BrightpearlLookups()
    acumatica: AcumaticaLookups = AcumaticaLookups()


_RULES: dict[int, tuple[weakref.ref[PairConfig], PairRules]] = {}


def rules_of(pair: PairConfig) -> PairRules:
    """The pair's rules without its systems' lookups: what an order run is started with
    (`OrderSyncInput.rules`). Made once per loaded pair object, not per webhook (the
    receiver and the relay both route every event; a dump and validation is ~34 us): kept
    by the object's identity while it lives, so a copy with changes gets its own."""
    key = id(pair)
    kept = _RULES.get(key)
    if kept is not None and kept[0]() is pair:
        return kept[1]
    rules = PairRules.model_validate(pair.model_dump())

    def forget(_: weakref.ref[PairConfig]) -> None:
        _RULES.pop(key, None)

    _RULES[key] = (weakref.ref(pair, forget), rules)
    return rules


class PairsConfigError(Exception):
    """pairs.toml is unreadable or invalid; the message names the file, the key and why."""

    def __init__(self, path: Path | str, key: str, reason: str) -> None:
        self.path, self.key, self.reason = str(path), key, reason
        super().__init__(f"{path}: {key}: {reason}" if key else f"{path}: {reason}")


def default_pairs_path() -> Path:
    return Path(str(resources.files("commerce_sync.config").joinpath("pairs.toml")))


def load_pairs(path: Path | None = None) -> dict[str, PairConfig]:
    path = path or default_pairs_path()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PairsConfigError(path, "", "file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise PairsConfigError(path, "", f"not valid TOML: {exc}") from None
    unknown = set(raw) - {"pairs"}
    if unknown:
        raise PairsConfigError(
            path, sorted(unknown)[0], "unknown top-level key (expected [pairs.<id>])"
        )
    tables = raw.get("pairs")
    if not isinstance(tables, dict) or not tables:
        raise PairsConfigError(path, "pairs", "no pair defined")
    pairs: dict[str, PairConfig] = {}
    for pair_id, table in tables.items():
        if not isinstance(table, dict):
            raise PairsConfigError(path, f"pairs.{pair_id}", "must be a table")
        try:
            pairs[pair_id] = PairConfig.model_validate({"id": pair_id, **table})
        except ValidationError as exc:
            error = exc.errors()[0]
            key = ".".join(["pairs", pair_id, *(str(part) for part in error["loc"])])
            raise PairsConfigError(path, key, error["msg"]) from None
    return pairs
