"""Anomaly bench: the robust checks against a learned model on a labelled order stream.

`.venv/bin/python -m bench.anomalies` (options: `--seed`, `--normals`,
`--anomalies-per-kind`, `--no-model`) answers the question the anomaly issue asks:
do the robust statistics of `domain/anomalies.py` need a learned model beside them?

1. A seeded generator (`random.Random(seed)`) writes one merchant's order stream as
   canonical `Order`s shaped like the store sandboxes' (SKUs WIDGET-1..10 at the seed
   catalogue's prices, USD): about 2,000 normal orders over 60 days from about 800
   shoppers (one-off, occasional and regular shoppers, a few trade buyers whose usual
   basket is large, households and small offices sharing an address, usual cross-border
   routes US->CA and CA->US, a tail of bigger baskets, express shipping for returning
   shoppers and now and then on a small first order), then, after a warm-up of the
   first 600 orders, labelled anomalies interleaved with hard normals that should not
   be flagged (a trade buyer ordering big again, a domestic GB shopper). Anomalies, ~30
   of each kind: big_total (10-60x the usual total), bulk_sku (20-200 of one widget),
   rare_route (billed in the US, shipped where the store never ships), shared_address
   (5-8 new e-mails to one address within 3 days; labelled from the 4th e-mail on),
   first_express (a new shopper's first order, express, over first_order_express_over).
2. The robust checks through the real code path: every order in time order is recorded
   with `record_order_and_history` on a fresh, migrated temp SQLite file (deleted
   afterwards) and flagged by `anomaly_flags` with the kentico-brightpearl rules of the
   packaged pairs.toml; an order counts as flagged when `needs_approval` says so.
   `is_new_customer`: the e-mail placed no earlier order in the stream.
3. scikit-learn's IsolationForest (the `anomaly-model` extra, for this comparison only)
   on features computed from the same history the checks read, fitted on the warm-up
   orders and refitted every 200 orders on every order before (labels never used),
   at two operating points: the same number of flagged orders as the robust checks
   (its top scores over the measured orders, a threshold only hindsight could set: a
   fair comparison at equal alert volume, generous to the model) and contamination=0.05
   (the threshold each fit sets from its training orders, usable online).

Figures are over the orders after the warm-up. Prints tables and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bench.orders import bench_main, percentile, positive_int
from commerce_sync.activities.database import order_facts
from commerce_sync.config.pairs import default_pairs_path, load_pairs
from commerce_sync.domain.anomalies import (
    OrderHistory,
    anomaly_flags,
    anomaly_score,
    needs_approval,
)
from commerce_sync.domain.models import Address, Customer, Order, OrderLine, Origin
from commerce_sync.domain.pair_rules import AnomalyRules
from commerce_sync.store.db import make_engine, migrate
from commerce_sync.store.orders_seen import record_order_and_history

PAIR = "kentico-brightpearl"
CURRENCY = "USD"
START = datetime(2025, 3, 3, tzinfo=UTC)
DAYS = 60
SHOPPERS_PER_ORDER = 0.4  # ~800 shoppers for 2,000 orders
WARM_UP_SHARE = 0.3  # the first 600 of 2,000 normal orders: history only, not measured
REFIT_EVERY = 200
CONTAMINATION = 0.05
TREES = 200

ANOMALY_KINDS = ("big_total", "bulk_sku", "rare_route", "shared_address", "first_express")
HARD_NORMAL_KINDS = ("big_regular", "gb_domestic")
NORMAL = "normal"

# The seed catalogue (sandboxes/seed.py): WIDGET-n at 9.99 + 5 * (n - 1).
SKUS: tuple[tuple[str, Decimal], ...] = tuple(
    (f"WIDGET-{n}", Decimal(f"{9.99 + 5 * (n - 1):.2f}")) for n in range(1, 11)
)
# Cheaper widgets sell more often.
SKU_WEIGHTS = tuple(1.0 / math.sqrt(n) for n in range(1, 11))
GROUND, EXPRESS = "ground", "express"
GROUND_FEE, EXPRESS_FEE = Decimal("5.99"), Decimal("24.99")
FREE_GROUND_FROM = Decimal("75.00")
TAX_RATE = {"US": Decimal("0.07"), "CA": Decimal("0.13"), "GB": Decimal("0.20")}
CENT = Decimal("0.01")

CITIES: dict[str, tuple[tuple[str, str, str], ...]] = {
    "US": (
        ("Austin", "TX", "787"),
        ("Seattle", "WA", "981"),
        ("Denver", "CO", "802"),
        ("Chicago", "IL", "606"),
        ("Boston", "MA", "021"),
        ("Portland", "OR", "972"),
        ("Atlanta", "GA", "303"),
        ("Phoenix", "AZ", "850"),
        ("Columbus", "OH", "432"),
        ("San Diego", "CA", "921"),
        ("Nashville", "TN", "372"),
        ("Madison", "WI", "537"),
    ),
    "CA": (
        ("Toronto", "ON", "M5V"),
        ("Vancouver", "BC", "V6B"),
        ("Montreal", "QC", "H2X"),
        ("Calgary", "AB", "T2P"),
    ),
    "GB": (
        ("London", "", "SW1A"),
        ("Manchester", "", "M1"),
        ("Bristol", "", "BS1"),
        ("Leeds", "", "LS1"),
    ),
}
# Countries this store never ships to (rare_route anomalies are billed in the US).
FAR_AWAY: tuple[tuple[str, str, str], ...] = (
    ("NG", "Lagos", "100001"),
    ("RU", "Moscow", "101000"),
    ("VN", "Ho Chi Minh City", "700000"),
    ("ID", "Jakarta", "10110"),
    ("UA", "Kyiv", "01001"),
    ("BR", "Sao Paulo", "01310-000"),
    ("PH", "Manila", "1000"),
    ("PK", "Karachi", "74000"),
)
STREETS = (
    "Main St",
    "Oak Ave",
    "Pine St",
    "Maple Dr",
    "Cedar Ln",
    "Elm St",
    "Lake Rd",
    "Hill St",
    "Park Ave",
    "River Rd",
)
FIRST_NAMES = (
    "Ava", "Ben", "Cleo", "Dan", "Eve", "Finn", "Gia", "Hugo", "Ida", "Jon",
    "Kai", "Lea", "Max", "Nia", "Omar", "Pia", "Quin", "Rosa", "Sam", "Tess",
)  # fmt: skip
LAST_NAMES = (
    "Adams", "Baker", "Clark", "Diaz", "Evans", "Fox", "Gray", "Hill", "Ito", "Jones",
    "King", "Lopez", "Moore", "Nolan", "Ortiz", "Patel", "Reed", "Shaw", "Tran", "Young",
)  # fmt: skip
MAIL_DOMAINS = ("example.com", "example.net", "example.org", "mail.example")

err = Console(stderr=True, highlight=False)


# ---- the generator ----------------------------------------------------------------------


@dataclass
class Shopper:
    email: str
    first_name: str
    last_name: str
    home: Address
    abroad: Address | None = None  # a usual cross-border ship-to (a relative's address)
    trade: bool = False  # a trade buyer: large baskets, every time
    trade_scale: int = 0  # the trade buyer's usual units per line
    orders: int = 0  # orders placed so far in the stream


@dataclass
class Ring:
    """Different new e-mails shipping to one address within a few days."""

    address: Address


@dataclass(order=True)
class Slot:
    at: datetime
    tie: int
    kind: str = field(compare=False)  # "normal", an anomaly kind or a hard-normal kind
    shopper: Shopper | None = field(default=None, compare=False)
    ring: Ring | None = field(default=None, compare=False)
    ring_index: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Labelled:
    order: Order
    label: str  # "normal" or an anomaly kind
    profile: str  # for a normal order, what kind of normal it is; else the anomaly kind
    size: float = 0.0  # big_total: x the usual total; bulk_sku: units of the SKU

    @property
    def anomalous(self) -> bool:
        return self.label != NORMAL


@dataclass(frozen=True)
class Stream:
    orders: list[Labelled]
    warm_up: int  # the first `warm_up` orders are history only
    shoppers: int


class Generator:
    """One merchant's labelled order stream, all randomness from `random.Random(seed)`."""

    def __init__(
        self,
        seed: int,
        normals: int,
        anomalies_per_kind: int,
        express_over: Decimal,
    ) -> None:
        self.rng = random.Random(seed)
        self.normals = normals
        self.per_kind = anomalies_per_kind
        self.hard_per_kind = max(1, anomalies_per_kind // 2)
        self.express_over = express_over
        self.shoppers: list[Shopper] = []
        self.normal_totals: list[Decimal] = []
        self.orders_of: dict[int, int] = {}  # normal shopper index -> orders they place
        self._ties = 0

    # -- people and places --

    def _address(self, country: str, name: str) -> Address:
        city, region, postal = self.rng.choice(CITIES[country])
        if country == "US":
            postal += f"{self.rng.randint(0, 99):02d}"
        elif country == "CA":
            postal += f" {self.rng.randint(1, 9)}A{self.rng.randint(1, 9)}"
        else:
            postal += f" {self.rng.randint(1, 9)}AA"
        return Address(
            name=name,
            line1=f"{self.rng.randint(1, 9999)} {self.rng.choice(STREETS)}",
            city=city,
            region=region,
            postal_code=postal,
            country=country,
        )

    def _far_address(self, name: str) -> Address:
        country, city, postal = self.rng.choice(FAR_AWAY)
        return Address(
            name=name,
            line1=f"{self.rng.randint(1, 300)} {self.rng.choice(STREETS)}",
            city=city,
            postal_code=postal,
            country=country,
        )

    def _shopper(self, country: str, *, register: bool = True) -> Shopper:
        first, last = self.rng.choice(FIRST_NAMES), self.rng.choice(LAST_NAMES)
        number = len(self.shoppers) + 1
        email = f"{first}.{last}.{number}@{self.rng.choice(MAIL_DOMAINS)}".lower()
        shopper = Shopper(email, first, last, self._address(country, f"{first} {last}"))
        if register:
            self.shoppers.append(shopper)
        return shopper

    def _at(self, seconds: float) -> datetime:
        return START + timedelta(seconds=seconds)

    def _slot(self, at: datetime, kind: str, **extra: Any) -> Slot:
        self._ties += 1
        return Slot(at, self._ties, kind, **extra)

    # -- baskets --

    def _sku(self) -> str:
        """A widget, the cheaper ones more often."""
        return self.rng.choices(SKUS, weights=SKU_WEIGHTS)[0][0]

    def _lines(self, wanted: dict[str, int]) -> list[OrderLine]:
        prices = dict(SKUS)
        return [
            OrderLine(
                sku=sku,
                name=f"Widget {sku.split('-')[1]}",
                quantity=quantity,
                unit_price=prices[sku],
                external_line_id=str(i + 1),
            )
            for i, (sku, quantity) in enumerate(wanted.items())
        ]

    def _usual_basket(self) -> tuple[dict[str, int], str]:
        """A shopper's basket: 1-3 lines of 1-3 units mostly; a tail of bigger ones."""
        tail = self.rng.random() < 0.04  # the natural tail: a bigger basket now and then
        if tail:
            count, profile = self.rng.randint(4, 6), "bigger_basket"
        else:
            count = self.rng.choices((1, 2, 3), weights=(55, 30, 15))[0]
            profile = "regular"
        wanted: dict[str, int] = {}
        while len(wanted) < count:  # distinct widgets, each on one line
            sku = self._sku()
            if sku in wanted:
                continue
            if tail:
                wanted[sku] = self.rng.choice((1, 1, 2, 2, 3, 4))
            else:
                wanted[sku] = self.rng.choices(
                    (1, 2, 3, 4, 5, 6), weights=(72, 18, 7, 1.5, 1, 0.5)
                )[0]
        return wanted, profile

    def _trade_basket(self, shopper: Shopper) -> dict[str, int]:
        """A trade buyer's usual: 3-6 lines, each around their usual units per line."""
        wanted: dict[str, int] = {}
        for sku, _price in self.rng.sample(SKUS, self.rng.randint(3, 6)):
            wanted[sku] = max(2, round(shopper.trade_scale * self.rng.uniform(0.6, 1.5)))
        return wanted

    def _basket_for(self, target: Decimal, skus: Sequence[tuple[str, Decimal]]) -> dict[str, int]:
        """Units of `skus` (spread evenly) adding up to about `target` before tax."""
        share = target / len(skus)
        return {sku: max(1, int((share / price).to_integral_value())) for sku, price in skus}

    # -- orders --

    def _order(
        self,
        at: datetime,
        shopper: Shopper,
        wanted: dict[str, int],
        *,
        ship_to: Address | None = None,
        express: bool = False,
        first_express_allowed: bool = False,
    ) -> Order:
        """The order as the store sandboxes write it (one canonical `Order`). A new
        shopper's express order over the limit becomes ground unless it is meant to be
        the anomaly (`first_express_allowed`)."""
        lines = self._lines(wanted)
        subtotal = sum((line.net for line in lines), Decimal("0"))
        billing = shopper.home
        shipping = ship_to or shopper.home
        rate = TAX_RATE.get(billing.country, Decimal("0.07"))
        tax = (subtotal * rate).quantize(CENT, ROUND_HALF_UP)

        def total_with(method: str) -> tuple[Decimal, Decimal]:
            if method == EXPRESS:
                fee = EXPRESS_FEE
            else:
                fee = Decimal("0") if subtotal >= FREE_GROUND_FROM else GROUND_FEE
            return fee, subtotal + fee + tax

        method = EXPRESS if express else GROUND
        fee, total = total_with(method)
        first = shopper.orders == 0
        if method == EXPRESS and first and total > self.express_over and not first_express_allowed:
            method = GROUND
            fee, total = total_with(method)
        shopper.orders += 1
        return Order(
            origin=Origin(system="kentico", external_id="0"),  # numbered in time order
            number="0",
            placed_at=at,
            currency=CURRENCY,
            customer=Customer(
                email=shopper.email, first_name=shopper.first_name, last_name=shopper.last_name
            ),
            billing_address=billing,
            shipping_address=shipping,
            lines=lines,
            shipping_method=method,
            shipping_total=fee,
            tax_total=tax,
            total=total,
        )

    def _usual_express(self, shopper: Shopper) -> bool:
        if shopper.orders == 0:
            return self.rng.random() < 0.04  # a few small first orders ship express
        return self.rng.random() < (0.10 if shopper.trade else 0.12)

    def _usual_ship_to(self, shopper: Shopper) -> Address:
        if shopper.abroad is not None:
            share = 0.05 if shopper.home.country == "US" else 0.15
            if self.rng.random() < share:
                return shopper.abroad
        return shopper.home

    def _usual_median(self) -> Decimal:
        return statistics.median(self.normal_totals)

    # -- the stream --

    def _normal_shoppers(self) -> list[Shopper]:
        """~800 shoppers with how many orders each places (adding up to `normals`)."""
        count = max(10, round(self.normals * SHOPPERS_PER_ORDER))
        regulars: list[Shopper] = []
        for _ in range(count):
            country = self.rng.choices(("US", "CA", "GB"), weights=(88, 8, 4))[0]
            shopper = self._shopper(country)
            if country == "US":
                shopper.abroad = self._address("CA", f"{shopper.first_name} {shopper.last_name}")
            elif country == "CA":
                shopper.abroad = self._address("US", f"{shopper.first_name} {shopper.last_name}")
            regulars.append(shopper)
        # Households (two e-mails, one address) and small offices (three).
        for _ in range(max(1, count // 33)):
            a, b = self.rng.sample(regulars, 2)
            if a.home.country == b.home.country:
                b.home = a.home
        for _ in range(max(1, count // 250)):
            a, b, c = self.rng.sample(regulars, 3)
            if a.home.country == b.home.country == c.home.country:
                b.home = c.home = a.home
        trade = regulars[: max(2, round(count * 0.01))]
        for shopper in trade:
            shopper.trade = True
            shopper.trade_scale = self.rng.randint(4, 10)
        for i, shopper in enumerate(regulars):
            if shopper.trade:
                n = self.rng.randint(6, 12)
            else:
                kind = self.rng.choices(("once", "occasional", "regular"), weights=(55, 30, 15))[0]
                n = {"once": 1, "occasional": self.rng.randint(2, 3)}.get(
                    kind, self.rng.randint(4, 10)
                )
            self.orders_of[i] = n
        total = sum(self.orders_of.values())
        repeaters = [i for i, s in enumerate(regulars) if not s.trade]
        while total > self.normals:  # one order fewer for a repeat shopper
            fewer = [i for i in repeaters if self.orders_of[i] > 1]
            if not fewer:
                break  # every shopper orders once: more normal orders than asked for
            self.orders_of[self.rng.choice(fewer)] -= 1
            total -= 1
        while total < self.normals:  # one order more for a repeat shopper
            more = [i for i in repeaters if self.orders_of[i] > 1] or repeaters
            self.orders_of[self.rng.choice(more)] += 1
            total += 1
        return regulars

    def stream(self) -> Stream:
        span = DAYS * 86400.0
        regulars = self._normal_shoppers()
        slots = [
            self._slot(self._at(self.rng.uniform(0, span)), NORMAL, shopper=shopper)
            for i, shopper in enumerate(regulars)
            for _ in range(self.orders_of[i])
        ]
        slots.sort()
        warm_up = min(len(slots) - 1, max(1, round(len(slots) * WARM_UP_SHARE)))
        after = (slots[warm_up].at - START).total_seconds()

        def later() -> datetime:
            return self._at(self.rng.uniform(after, span))

        for kind in ("big_total", "bulk_sku", "rare_route", "first_express"):
            slots += [self._slot(later(), kind) for _ in range(self.per_kind)]
        for kind in HARD_NORMAL_KINDS:
            slots += [self._slot(later(), kind) for _ in range(self.hard_per_kind)]
        labelled_in_rings = 0
        while labelled_in_rings < self.per_kind:
            size = self.rng.randint(5, 8)
            ring = Ring(self._address("US", ""))
            start = self.rng.uniform(after, span - 3 * 86400.0)
            times = sorted(self.rng.uniform(start, start + 3 * 86400.0) for _ in range(size))
            slots += [
                self._slot(self._at(t), "shared_address", ring=ring, ring_index=i)
                for i, t in enumerate(times)
            ]
            labelled_in_rings += size - 3
        slots.sort()

        orders: list[Labelled] = []
        for number, slot in enumerate(slots, start=1):
            item = self._build(slot)
            item.order.origin = Origin(system="kentico", external_id=str(number))
            item.order.number = f"KC-{100000 + number}"
            orders.append(item)
        return Stream(orders, warm_up, len(self.shoppers))

    def _build(self, slot: Slot) -> Labelled:
        builders: dict[str, Callable[[Slot], Labelled]] = {
            NORMAL: self._normal,
            "big_regular": self._big_regular,
            "gb_domestic": self._gb_domestic,
            "big_total": self._big_total,
            "bulk_sku": self._bulk_sku,
            "rare_route": self._rare_route,
            "shared_address": self._shared_address,
            "first_express": self._first_express,
        }
        return builders[slot.kind](slot)

    def _normal(self, slot: Slot) -> Labelled:
        shopper = slot.shopper
        assert shopper is not None
        if shopper.trade:
            wanted, profile = self._trade_basket(shopper), "trade_buyer"
        else:
            wanted, profile = self._usual_basket()
        ship_to = self._usual_ship_to(shopper)
        if profile == "regular" and ship_to is not shopper.home:
            profile = "cross_border"
        if profile == "regular" and shopper.home.country == "GB":
            profile = "gb_shopper"
        express = self._usual_express(shopper)
        order = self._order(slot.at, shopper, wanted, ship_to=ship_to, express=express)
        if order.shipping_method == EXPRESS and profile == "regular":
            profile = "express_first" if shopper.orders == 1 else "express_returning"
        self.normal_totals.append(order.total)
        return Labelled(order, NORMAL, profile)

    def _known(self, *, country: str = "US") -> Shopper:
        """A shopper who ordered before (not a trade buyer); a new one if there is none."""
        known = [
            s for s in self.shoppers if s.orders > 0 and not s.trade and s.home.country == country
        ]
        return self.rng.choice(known) if known else self._shopper(country)

    def _big_regular(self, slot: Slot) -> Labelled:
        """Hard normal: a trade buyer (3+ orders already when possible) ordering big again."""
        trade = [s for s in self.shoppers if s.trade]
        ready = [s for s in trade if s.orders >= 3]
        shopper = self.rng.choice(ready) if ready else max(trade, key=lambda s: (s.orders, s.email))
        order = self._order(
            slot.at, shopper, self._trade_basket(shopper), express=self._usual_express(shopper)
        )
        return Labelled(order, NORMAL, "hard:big_regular")

    def _gb_domestic(self, slot: Slot) -> Labelled:
        """Hard normal: a GB shopper (new or known) billed and shipped in GB."""
        known = [s for s in self.shoppers if s.home.country == "GB" and s.orders > 0]
        if known and self.rng.random() < 0.5:
            shopper = self.rng.choice(known)
        else:
            shopper = self._shopper("GB")
        wanted, _profile = self._usual_basket()
        order = self._order(slot.at, shopper, wanted, express=self._usual_express(shopper))
        return Labelled(order, NORMAL, "hard:gb_domestic")

    def _big_total(self, slot: Slot) -> Labelled:
        """A basket 10-60x the usual total, over 3-10 widgets (a new shopper mostly)."""
        shopper = self._known() if self.rng.random() < 0.3 else self._shopper("US")
        ratio = self.rng.uniform(10, 60)
        target = self._usual_median() * Decimal(f"{ratio:.4f}")
        skus = self.rng.sample(SKUS, self.rng.randint(3, 10))
        wanted = self._basket_for(target / Decimal("1.07"), skus)
        order = self._order(slot.at, shopper, wanted)
        size = float(order.total / self._usual_median())
        return Labelled(order, "big_total", "big_total", size=round(size, 1))

    def _bulk_sku(self, slot: Slot) -> Labelled:
        """20-200 units of one widget (a reseller), sometimes with a usual line beside."""
        shopper = self._known() if self.rng.random() < 0.4 else self._shopper("US")
        sku = self._sku()
        units = self.rng.randint(20, 200)
        wanted = {sku: units}
        if self.rng.random() < 0.4:
            other = self._sku()
            if other != sku:
                wanted[other] = self.rng.randint(1, 2)
        order = self._order(slot.at, shopper, wanted)
        return Labelled(order, "bulk_sku", "bulk_sku", size=float(units))

    def _rare_route(self, slot: Slot) -> Labelled:
        """Billed in the US, shipped to a country the store never ships to."""
        shopper = self._known() if self.rng.random() < 0.2 else self._shopper("US")
        wanted, _profile = self._usual_basket()
        far = self._far_address(f"{shopper.first_name} {shopper.last_name}")
        order = self._order(slot.at, shopper, wanted, ship_to=far, express=self.rng.random() < 0.3)
        return Labelled(order, "rare_route", "rare_route")

    def _shared_address(self, slot: Slot) -> Labelled:
        """A new e-mail shipping to the ring's address; labelled from the 4th e-mail on."""
        assert slot.ring is not None
        shopper = self._shopper("US")
        wanted, _profile = self._usual_basket()
        ring_address = slot.ring.address.model_copy(
            update={"name": f"{shopper.first_name} {shopper.last_name}"}
        )
        order = self._order(
            slot.at, shopper, wanted, ship_to=ring_address, express=self.rng.random() < 0.2
        )
        if slot.ring_index >= 3:
            return Labelled(order, "shared_address", "shared_address")
        return Labelled(order, NORMAL, "ring:first_three")

    def _first_express(self, slot: Slot) -> Labelled:
        """A new shopper's first order, express, over the pair's limit."""
        shopper = self._shopper(self.rng.choices(("US", "CA"), weights=(9, 1))[0])
        while True:
            target = self.express_over * Decimal(f"{self.rng.uniform(1.05, 3.0):.4f}")
            skus = self.rng.sample(SKUS[4:], self.rng.randint(3, 6))
            wanted = self._basket_for(target / Decimal("1.1"), skus)
            lines = self._lines(wanted)
            subtotal = sum((line.net for line in lines), Decimal("0"))
            if subtotal > self.express_over:
                break
        order = self._order(slot.at, shopper, wanted, express=True, first_express_allowed=True)
        return Labelled(order, "first_express", "first_express")


# ---- the robust checks, through the real code path ----------------------------------------


@dataclass(frozen=True)
class Assessed:
    item: Labelled
    flagged: bool
    checks: tuple[str, ...]
    score: float  # anomaly_score of the flags
    seconds: float
    features: list[float]


FEATURES = (
    "log_total",
    "log_total_vs_store_median",
    "log_total_vs_customer_median",
    "max_sku_quantity_z",
    "log_units",
    "lines",
    "route_share",
    "billing_country_share",
    "other_emails_at_address",
    "new_customer",
    "express",
    "new_customer_express",
)


def is_express(method: str, rules: AnomalyRules) -> bool:
    folded = method.casefold()
    return any(word.strip() and word.strip().casefold() in folded for word in rules.express_methods)


def order_features(
    order: Order,
    history: OrderHistory,
    history_orders: int,
    is_new_customer: bool,
    rules: AnomalyRules,
) -> list[float]:
    """What the model sees: the order against the same history the checks read."""
    total = float(order.total) if order.total > 0 else 0.01
    store = [float(t) for t in history.store_totals if t > 0]
    mine = [float(t) for t in history.customer_totals if t > 0]
    quantities: dict[str, int] = {}
    for line in order.lines:
        quantities[line.sku] = quantities.get(line.sku, 0) + line.quantity
    sku_z = 0.0
    for sku, quantity in quantities.items():
        learned = [q for q in history.sku_quantities.get(sku, []) if q > 0]
        if len(learned) >= 3:
            median = statistics.median(learned)
            spread = statistics.median([abs(q - median) for q in learned])
            sku_z = max(sku_z, (quantity - median) / max(1.4826 * spread, 1.0))
    billed = history.orders_billed_in_country
    if order.billing_address.country == order.shipping_address.country:
        route_share = 1.0
    else:
        route_share = history.orders_on_route / billed if billed else 0.0
    express = is_express(order.shipping_method, rules)
    return [
        math.log(total),
        math.log(total / statistics.median(store)) if store else 0.0,
        math.log(total / statistics.median(mine)) if mine else 0.0,
        sku_z,
        math.log(max(1, sum(quantities.values()))),
        float(len(order.lines)),
        route_share,
        billed / history_orders if history_orders else 1.0,
        float(history.other_emails_at_address),
        float(is_new_customer),
        float(express),
        float(is_new_customer and express),
    ]


def assess(stream: Stream, rules: AnomalyRules, url: str) -> list[Assessed]:
    """Every order in time order through `record_order_and_history` + `anomaly_flags`
    (what `Database.assess_order` runs), on a freshly migrated database at `url`."""
    engine = make_engine(url)
    try:
        migrate(engine)
        seen: set[str] = set()
        assessed: list[Assessed] = []
        for n, item in enumerate(stream.orders, start=1):
            order = item.order
            facts = order_facts(PAIR, order.origin.external_id, order, None)
            is_new = facts.email_key not in seen
            began = time.perf_counter()
            before = record_order_and_history(
                engine,
                facts,
                history_days=rules.history_days,
                address_window_days=rules.address_window_days,
            )
            flags = anomaly_flags(order, before.history, rules, is_new_customer=is_new)
            seconds = time.perf_counter() - began
            seen.add(facts.email_key)
            assessed.append(
                Assessed(
                    item=item,
                    flagged=needs_approval(flags, rules),
                    checks=tuple(flag.check for flag in flags),
                    score=anomaly_score(flags),
                    seconds=seconds,
                    features=order_features(
                        order, before.history, before.history_orders, is_new, rules
                    ),
                )
            )
            if n % 500 == 0:
                err.print(f"  {n} / {len(stream.orders)} orders assessed")
        return assessed
    finally:
        engine.dispose()


# ---- the learned model ---------------------------------------------------------------------


@dataclass(frozen=True)
class ModelScores:
    scores: list[float]  # per evaluated order: higher = more unusual
    flagged_at_contamination: list[bool]
    fits: int


def isolation_forest(assessed: list[Assessed], warm_up: int, seed: int) -> ModelScores | None:
    """IsolationForest fitted on the warm-up orders, refitted every REFIT_EVERY orders on
    every order before; each order is scored by the model fitted on the orders before it.
    None when scikit-learn is not installed."""
    try:
        from sklearn.ensemble import IsolationForest
    except ImportError:
        return None
    rows = [a.features for a in assessed]
    scores: list[float] = []
    flagged: list[bool] = []
    fits = 0
    for start in range(warm_up, len(rows), REFIT_EVERY):
        model = IsolationForest(
            n_estimators=TREES, contamination=CONTAMINATION, random_state=seed, n_jobs=1
        )
        model.fit(rows[:start])
        fits += 1
        batch = rows[start : start + REFIT_EVERY]
        scores += [-float(s) for s in model.score_samples(batch)]
        flagged += [int(p) == -1 for p in model.predict(batch)]
    return ModelScores(scores, flagged, fits)


def top(scores: Sequence[float], count: int) -> list[bool]:
    """The `count` highest scores flagged (ties broken by position)."""
    ranked = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    chosen = set(ranked[:count])
    return [i in chosen for i in range(len(scores))]


# ---- figures -------------------------------------------------------------------------------


@dataclass
class Figures:
    method: str
    flagged: int
    true_positives: int
    false_positives: int
    precision: float
    recall: float
    f1: float
    false_positive_rate: float
    recall_by_kind: dict[str, float]
    hard_normals_flagged: dict[str, str]
    false_positives_by_profile: dict[str, int]
    missed_sizes: dict[str, list[float]]
    # the robust checks only: which checks' flags added up, and the scores of misses
    false_positive_checks: dict[str, int] = field(default_factory=dict)
    caught_by_checks: dict[str, dict[str, int]] = field(default_factory=dict)
    missed_scores: dict[str, list[float]] = field(default_factory=dict)


def figures(
    method: str, items: Sequence[Assessed], flagged: Sequence[bool], *, with_checks: bool
) -> Figures:
    tp = sum(1 for a, f in zip(items, flagged, strict=True) if f and a.item.anomalous)
    fp = sum(1 for a, f in zip(items, flagged, strict=True) if f and not a.item.anomalous)
    anomalies = sum(1 for a in items if a.item.anomalous)
    normals = len(items) - anomalies
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / anomalies if anomalies else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    by_kind: dict[str, float] = {}
    missed: dict[str, list[float]] = {}
    for kind in ANOMALY_KINDS:
        of_kind = [(a, f) for a, f in zip(items, flagged, strict=True) if a.item.label == kind]
        by_kind[kind] = sum(f for _a, f in of_kind) / len(of_kind) if of_kind else 0.0
        if kind in ("big_total", "bulk_sku"):
            missed[kind] = sorted(a.item.size for a, f in of_kind if not f)
    hard: dict[str, str] = {}
    for kind in HARD_NORMAL_KINDS:
        hard_ones = [
            f for a, f in zip(items, flagged, strict=True) if a.item.profile == f"hard:{kind}"
        ]
        hard[kind] = f"{sum(hard_ones)}/{len(hard_ones)}"
    fp_profiles = Counter(
        a.item.profile for a, f in zip(items, flagged, strict=True) if f and not a.item.anomalous
    )
    fp_checks: Counter[str] = Counter()
    caught: dict[str, Counter[str]] = {}
    missed_scores: dict[str, list[float]] = {}
    if with_checks:
        for a, f in zip(items, flagged, strict=True):
            checks = "+".join(sorted(a.checks)) or "none"
            if f and not a.item.anomalous:
                fp_checks[checks] += 1
            elif f:
                caught.setdefault(a.item.label, Counter())[checks] += 1
            elif a.item.anomalous:
                missed_scores.setdefault(a.item.label, []).append(a.score)
    return Figures(
        method=method,
        flagged=sum(flagged),
        true_positives=tp,
        false_positives=fp,
        precision=precision,
        recall=recall,
        f1=f1,
        false_positive_rate=fp / normals if normals else 0.0,
        recall_by_kind=by_kind,
        hard_normals_flagged=hard,
        false_positives_by_profile=dict(fp_profiles.most_common()),
        missed_sizes=missed,
        false_positive_checks=dict(fp_checks.most_common()),
        caught_by_checks={k: dict(caught[k].most_common()) for k in ANOMALY_KINDS if k in caught},
        missed_scores={k: sorted(v) for k, v in missed_scores.items()},
    )


@dataclass
class AnomalyBenchResult:
    seed: int
    orders: int
    shoppers: int
    warm_up: int
    evaluated: int
    anomalies: dict[str, int]
    normals_evaluated: int
    profiles_evaluated: dict[str, int]
    methods: list[Figures]
    call_ms_p50: float
    call_ms_p99: float
    model: str  # "isolation_forest" or why it was skipped
    model_fits: int
    cpus: int
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float]
    wall_s: float

    def as_json(self) -> dict[str, Any]:
        def rounded(value: Any) -> Any:
            if isinstance(value, float):
                return round(value, 4)
            if isinstance(value, dict):
                return {k: rounded(v) for k, v in value.items()}
            if isinstance(value, list | tuple):
                return [rounded(v) for v in value]
            return value

        return {"bench": "anomalies", **rounded(asdict(self))}


def measure(args: argparse.Namespace) -> AnomalyBenchResult:
    began = time.monotonic()
    load_before = os.getloadavg()
    rules = load_pairs(default_pairs_path())[PAIR].anomalies
    express_over = rules.first_order_express_over or Decimal("400.00")
    err.print(f"generating the order stream (seed {args.seed}) ...")
    stream = Generator(args.seed, args.normals, args.anomalies_per_kind, express_over).stream()
    err.print(f"assessing {len(stream.orders)} orders with the robust checks ({PAIR} rules) ...")
    with tempfile.TemporaryDirectory(prefix="commerce-sync-bench-anomalies-") as tmp:
        assessed = assess(stream, rules, f"sqlite:///{Path(tmp) / 'app.db'}")
    evaluated = assessed[stream.warm_up :]
    robust = [a.flagged for a in evaluated]
    methods = [figures("robust checks", evaluated, robust, with_checks=True)]
    model = "isolation_forest"
    fits = 0
    if args.no_model:
        model = "skipped (--no-model)"
    else:
        err.print("IsolationForest: fitting and scoring ...")
        scored = isolation_forest(assessed, stream.warm_up, args.seed)
        if scored is None:
            model = (
                "skipped: scikit-learn is not installed (pip install 'commerce-sync[anomaly-model]' "
                "or .venv/bin/pip install 'scikit-learn>=1.5')"
            )
        else:
            fits = scored.fits
            methods.append(
                figures(
                    "IsolationForest, equal alert volume",
                    evaluated,
                    top(scored.scores, sum(robust)),
                    with_checks=False,
                )
            )
            methods.append(
                figures(
                    f"IsolationForest, contamination={CONTAMINATION:g}",
                    evaluated,
                    scored.flagged_at_contamination,
                    with_checks=False,
                )
            )
    ms = [a.seconds * 1000 for a in assessed]
    return AnomalyBenchResult(
        seed=args.seed,
        orders=len(assessed),
        shoppers=stream.shoppers,
        warm_up=stream.warm_up,
        evaluated=len(evaluated),
        anomalies={k: sum(1 for a in evaluated if a.item.label == k) for k in ANOMALY_KINDS},
        normals_evaluated=sum(1 for a in evaluated if not a.item.anomalous),
        profiles_evaluated=dict(
            Counter(a.item.profile for a in evaluated if not a.item.anomalous).most_common()
        ),
        methods=methods,
        call_ms_p50=percentile(ms, 50),
        call_ms_p99=percentile(ms, 99),
        model=model,
        model_fits=fits,
        cpus=os.cpu_count() or 0,
        load_before=load_before,
        load_after=os.getloadavg(),
        wall_s=time.monotonic() - began,
    )


async def run(args: argparse.Namespace) -> AnomalyBenchResult:
    return measure(args)


# ---- output --------------------------------------------------------------------------------


DEFINITIONS = (
    "figures over the orders after the warm-up; flagged = needs_approval for the robust checks "
    "(kentico-brightpearl rules of the packaged pairs.toml).",
    "precision = flagged anomalies / flagged; recall = flagged anomalies / anomalies; FP rate = "
    "flagged normal orders / normal orders (hard normals and a ring's first three e-mails are "
    "normal orders).",
    "IsolationForest: fitted on the warm-up, refitted every "
    f"{REFIT_EVERY} orders on every earlier order (labels unused), {TREES} trees; 'equal alert "
    "volume' flags its top scores, as many orders as the robust checks flagged.",
    "cost: one record_order_and_history + anomaly_flags call on a SQLite file (the assess_order "
    "activity's work), over every order of the stream.",
)


def _pct(value: float) -> str:
    return f"{value * 100:.1f}%"


def report(result: AnomalyBenchResult, out: Console) -> None:
    counts = ", ".join(f"{k} {n}" for k, n in result.anomalies.items())
    table = Table(
        title=(
            f"commerce-sync anomalies: seed {result.seed}, {result.orders} orders from "
            f"{result.shoppers} shoppers, {result.evaluated} after a {result.warm_up}-order "
            f"warm-up ({result.normals_evaluated} normal; anomalies: {counts})"
        ),
        title_justify="left",
    )
    for name in ("method", "flagged", "precision", "recall", "F1", "FP rate", *ANOMALY_KINDS):
        table.add_column(name, justify="left" if name == "method" else "right")
    for m in result.methods:
        table.add_row(
            m.method,
            str(m.flagged),
            _pct(m.precision),
            _pct(m.recall),
            f"{m.f1:.3f}",
            _pct(m.false_positive_rate),
            *(_pct(m.recall_by_kind[k]) for k in ANOMALY_KINDS),
        )
    out.print(table)

    profiles = sorted(result.profiles_evaluated)
    normals = Table(title="false positives by kind of normal order", title_justify="left")
    normals.add_column("normal order")
    normals.add_column("orders", justify="right")
    for m in result.methods:
        normals.add_column(m.method, justify="right")
    for profile in profiles:
        normals.add_row(
            profile,
            str(result.profiles_evaluated[profile]),
            *(str(m.false_positives_by_profile.get(profile, 0)) for m in result.methods),
        )
    out.print(normals)

    facts = Table(title="details", title_justify="left")
    facts.add_column("figure")
    facts.add_column("value")
    robust = result.methods[0]
    facts.add_row(
        "robust checks behind false positives",
        ", ".join(f"{k} {n}" for k, n in robust.false_positive_checks.items()) or "none",
    )
    for kind, combos in robust.caught_by_checks.items():
        facts.add_row(
            f"robust checks behind caught {kind}", ", ".join(f"{k} {n}" for k, n in combos.items())
        )
    for kind, scores in robust.missed_scores.items():
        facts.add_row(
            f"robust checks: scores of missed {kind}", ", ".join(f"{x:g}" for x in scores)
        )
    for m in result.methods:
        for kind, sizes in m.missed_sizes.items():
            if sizes:
                unit = "x usual" if kind == "big_total" else "units"
                facts.add_row(
                    f"{m.method}: missed {kind} ({unit})", ", ".join(f"{s:g}" for s in sizes)
                )
    facts.add_row(
        "cost of one call p50 / p99", f"{result.call_ms_p50:.2f} / {result.call_ms_p99:.2f} ms"
    )
    facts.add_row("model", f"{escape(result.model)} ({result.model_fits} fits)")
    facts.add_row(
        "machine",
        f"{result.cpus} cores, load {'/'.join(f'{x:.2f}' for x in result.load_before)} -> "
        f"{'/'.join(f'{x:.2f}' for x in result.load_after)}",
    )
    facts.add_row("bench wall time", f"{result.wall_s:.0f} s")
    out.print(facts)
    for line in DEFINITIONS:
        out.print(f"[dim]- {line}[/]", soft_wrap=True)
    if result.model != "isolation_forest":
        out.print(f"model comparison {result.model}", soft_wrap=True, markup=False)
    print(json.dumps(result.as_json(), separators=(",", ":")), flush=True)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.anomalies",
        description="Precision and recall of the robust anomaly checks on a labelled, "
        "generated order stream, against an IsolationForest at equal alert volume.",
    )
    parser.add_argument("--seed", type=int, default=7, help="generator seed (default 7)")
    parser.add_argument(
        "--normals", type=positive_int, default=2000, help="normal orders (default 2000)"
    )
    parser.add_argument(
        "--anomalies-per-kind",
        type=positive_int,
        default=30,
        help="labelled anomalies of each kind (default 30); half as many hard normals of each kind",
    )
    parser.add_argument(
        "--no-model", action="store_true", help="the robust checks only (no scikit-learn)"
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(bench_main(sys.argv[1:], parse_args, run, report, width=160))
