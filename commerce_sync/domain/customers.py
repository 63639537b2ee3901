"""Customer identity and field ownership: pure code shared by the merge and sync workflows.

- `normalise_email`: how two customer records are recognised as one person (trim,
  casefold, and `a+tag@x` == `a@x` when the pair says plus-addressing is the same person).
- `merge_customer`: the survivor of a merge, field by field, by the pair's
  system-of-record rules (`[pairs.X.customers] field_owner`): a field owned by the store
  takes the newest non-empty value the store's records hold, one owned by the ERP the
  ERP's; a field no rule names takes the newest non-empty value of any record.
- `flowing_fields` / `apply_fields`: which fields a change in one system may write to the
  other (the owner's fields, and fields no rule names), and the record that results.
- `fingerprint`: a digest of the synced fields of a record as read back after a write, so
  the change event that write raises is recognised as commerce-sync's own (echo).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from commerce_sync.domain.models import STORE_SYSTEMS, Address, Customer
from commerce_sync.domain.pair_rules import CustomerRules

Side = Literal["store", "erp"]

SYNC_FIELDS: tuple[str, ...] = (
    "email",
    "first_name",
    "last_name",
    "phone",
    "company",
    "billing_address",
    "shipping_address",
)
# The survivor keeps its own e-mail: it is the identity the duplicates were matched on.
MERGE_FIELDS: tuple[str, ...] = tuple(name for name in SYNC_FIELDS if name != "email")
_OLDEST = datetime.min.replace(tzinfo=UTC)


def normalise_email(email: str, *, plus_addressing: bool = True) -> str:
    """`  Jane.Doe+shop@Example.COM ` -> `jane.doe@example.com` (plus part kept when the
    pair does not treat plus-addresses as the same person)."""
    cleaned = email.strip().casefold()
    local, at, domain = cleaned.rpartition("@")
    if not at or not local:
        return cleaned
    if plus_addressing and "+" in local:
        base = local.split("+", 1)[0]
        local = base or local
    return f"{local}@{domain}"


def numbering_key(customer_id: str) -> tuple[int, str]:
    """Oldest first: ERPs and stores number customers upwards (`C000012`, `10452`), so
    the digits compare as a number, then the text."""
    digits = "".join(ch for ch in customer_id if ch.isdigit())
    return (int(digits) if digits else 0, customer_id)


def same_person(a: str, b: str, rules: CustomerRules) -> bool:
    plus = rules.plus_addressing_is_same_person
    return normalise_email(a, plus_addressing=plus) == normalise_email(b, plus_addressing=plus)


def email_variants(email: str, rules: CustomerRules) -> list[str]:
    """The addresses to search a system for: as given, and its base address."""
    variants = [email.strip()]
    base = normalise_email(email, plus_addressing=rules.plus_addressing_is_same_person)
    if base not in (variant.casefold() for variant in variants):
        variants.append(base)
    return variants


def side_of(customer: Customer) -> Side:
    if customer.origin is not None and customer.origin.system in STORE_SYSTEMS:
        return "store"
    return "erp"


def _address_key(address: Address | None) -> tuple[str, ...] | None:
    if address is None:
        return None
    return (
        address.line1.casefold(),
        address.line2.casefold(),
        address.city.casefold(),
        address.region.casefold(),
        address.postal_code.replace(" ", "").casefold(),
        address.country,
    )


def _comparable(customer: Customer, name: str) -> Any:
    value = getattr(customer, name)
    if isinstance(value, Address) or value is None:
        return _address_key(value)
    if name == "email":
        return str(value).strip().casefold()
    return str(value).strip()


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def merge_customer(
    survivor: Customer, others: Sequence[Customer], rules: CustomerRules
) -> Customer:
    """The survivor as the merge writes it.

    `others` are the duplicates and any linked records of the other system (sources
    only). For each field: the owner's records are asked first, newest non-empty value
    wins (a record without `updated_at` counts as oldest; on a tie the survivor, then the
    order given); when the owner's records hold nothing, or no rule names the field, the
    newest non-empty value of any record; when none has one, the survivor's own.
    """
    records = [survivor, *others]
    values: dict[str, Any] = {}
    for name in MERGE_FIELDS:
        owner = rules.field_owner.get(name)
        groups = [[r for r in records if side_of(r) == owner]] if owner else []
        groups.append(records)
        for group in groups:
            chosen = _newest_non_empty(group, name)
            if chosen is not None:
                values[name] = getattr(chosen, name)
                break
    return survivor.model_copy(update={**values, "active": True}, deep=True)


def _newest_non_empty(records: Sequence[Customer], name: str) -> Customer | None:
    best: Customer | None = None
    best_at = _OLDEST
    for record in records:
        if _empty(getattr(record, name)):
            continue
        at = record.updated_at or _OLDEST
        if best is None or at > best_at:
            best, best_at = record, at
    return best


def flowing_fields(rules: CustomerRules, source: Side) -> list[str]:
    """Fields a change in `source` may write to the other system: those it owns, and those
    no rule names (the latest change wins)."""
    return [name for name in SYNC_FIELDS if rules.field_owner.get(name, source) == source]


def changed_fields(target: Customer, source: Customer, fields: Sequence[str]) -> list[str]:
    """Fields whose value in `source` would change `target`. An empty address never
    clears one (a system that holds none says nothing about it)."""
    changed: list[str] = []
    for name in fields:
        if getattr(source, name) is None:
            continue
        if _comparable(target, name) != _comparable(source, name):
            changed.append(name)
    return changed


def apply_fields(target: Customer, source: Customer, fields: Sequence[str]) -> Customer:
    update = {name: getattr(source, name) for name in fields if getattr(source, name) is not None}
    return target.model_copy(update=update, deep=True)


def fingerprint(customer: Customer) -> str:
    """A digest of the synced fields and the active flag, as the system reports them."""
    data = {name: _comparable(customer, name) for name in SYNC_FIELDS}
    data["active"] = customer.active
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()
