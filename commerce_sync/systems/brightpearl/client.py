"""Brightpearl connector: one pooled `httpx.AsyncClient`, private-app authentication.

Every call sends `brightpearl-app-ref` and `brightpearl-account-token`, reads the
`{"response": ...}` envelope and classifies failures (`systems/errors.py`). A GET turned
away for a moment (a 503 that leaves requests in the period, a 5xx) is sent again here
(`systems/read_retries.py`); everything else is retried by Temporal. The throttle headers of every response are kept:
`requests_remaining` and `next_throttle_period_ms`. A 503 is Brightpearl's throttle
answer and becomes `ThrottledError(retry_after_s = brightpearl-next-throttle-period / 1000)`
when the period's requests are spent; one that leaves requests remaining is retried after
a second (`_retry_after`).

Searches page with the 1-based `firstResult` / `pageSize` (max 500) until
`lastResult >= resultsAvailable`; an empty search is a 404 and reads as "nothing". A
search filter is a match by the column's type (SEARCH_STRING a search term, STRING not
documented as exact either), so wherever a row is taken as "the" record, the row's own
column is compared with the value on every page first (docs/systems/brightpearl.md §5).
Multi-GETs use ID sets in batches no larger than the resource allows.

Contacts are created in steps (docs/systems/brightpearl.md §8): each postal address
(`POST contact-service/postal-address` answers its id), then the contact naming them in
`postAddressIds`. Exactly once, and how:
- the contact: the activity looks the e-mail up before creating (`ErpActivities.
  create_customer`), so a retry after a lost answer finds the contact it made;
- its postal addresses: Brightpearl documents no postal-address search and no delete, so
  an address made by an attempt whose contact POST then failed (throttled, 5xx, timed
  out) could neither be found nor removed, and the retry would post another (orphans:
  91 addresses for 68 contacts under real budgets). Each address made is recorded in
  the `AttemptMemory` the caller passes (the activity's heartbeat details, handed to
  the next attempt: `ops/heartbeat.py`), keyed by its role (`DEF`, or `DEL` when the
  shipping address differs), the customer's e-mail and a fingerprint of the postal
  body, and a retry reuses the id; a different address is never reused.
- an update changes the contact's own postal addresses in place (Postal Address PUT), so
  its retry leaves no second address; only an address the contact lacks is posted, and
  reused from the memory like the create's.
- a postal-address POST whose own answer is lost (a timeout after Brightpearl made it,
  maybe later than the retry): the retry reads the addresses above the highest id the
  client knew when it sent (Postal Address GET by ID set) and reuses one with the same
  fields; it posts again only after the pair's `duplicate_check_after` (see
  `_postal_address`). Left: a worker that dies before its heartbeat carried the record
  (heartbeats are throttled to one per 0.8 x the heartbeat timeout), and a send made
  before the client knew any address id (a fresh worker's first), leave what they made
  unfound.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import TracebackType
from typing import Any

import httpx

from commerce_sync.config.settings import BrightpearlSettings
from commerce_sync.domain.models import (
    Address,
    Customer,
    Order,
    OrderLine,
    OrderStatus,
    Payment,
    PaymentKind,
    Product,
    Shipment,
    StockLevel,
)
from commerce_sync.systems.attempts import NO_MEMORY, AttemptMemory, fingerprint
from commerce_sync.systems.brightpearl import mapping
from commerce_sync.systems.brightpearl.idsets import chunks, format_id_set
from commerce_sync.systems.brightpearl.lookups import BrightpearlLookups
from commerce_sync.systems.budget import throttle_pause
from commerce_sync.systems.errors import (
    AuthenticationFailed,
    ConnectorError,
    NotFound,
    PermanentError,
    ThrottledError,
    TransientError,
    ValidationFailed,
)
from commerce_sync.systems.observe import RequestHook, ResponseHook
from commerce_sync.systems.read_retries import read_with_retries
from commerce_sync.systems.uncertain_creates import sending_create

SYSTEM = "brightpearl"
MAX_PAGE_SIZE = 500
MAX_GET_IDS = 200
ABOVE_FLOOR_BATCHES = 5
"""At most this many ID sets of postal addresses are read for one lost POST's address."""
UNAVAILABLE_RETRY_S = 1.0
"""How soon a 503 that is not the throttle (requests remain in the period) is tried again."""
DOCUMENTED_BODY_TEMPLATE = (
    '{"accountCode":"${account-code}","resourceType":"${resource-type}",'
    '"id":"${resource-id}","lifecycleEvent":"${lifecycle-event}",'
    '"fullEvent":"${full-event}","raisedOn":"${raised-on}"}'
)
# a leading camelCase field path in an error message: "taxCode 'X' does not exist"
_FIELD = re.compile(r"^([a-z][\w.\[\]]*)(?=:|\s+(?:must|is|does|has|only)\b|\s+['\"{])")

Json = dict[str, Any]


class BrightpearlClient:
    """Async Brightpearl connector; use `async with BrightpearlClient(settings) as bp:`."""

    def __init__(
        self,
        settings: BrightpearlSettings,
        *,
        timeout_s: float = 15.0,
        lookups: BrightpearlLookups | None = None,
    ) -> None:
        self.settings = settings
        self.lookups = lookups or BrightpearlLookups()
        base = f"{settings.base_url.rstrip('/')}/public-api/{settings.account_code}/"
        self._http = httpx.AsyncClient(
            base_url=base,
            headers={
                "brightpearl-app-ref": settings.app_ref,
                "brightpearl-account-token": settings.account_token.get_secret_value(),
                "accept": "application/json",
            },
            timeout=httpx.Timeout(timeout_s),
        )
        self.requests_remaining: int | None = None
        self.next_throttle_period_ms: int | None = None
        self._sku_by_id: dict[int, str] = {}
        self._address_floor: int | None = None  # the highest postal-address id seen
        self._company_floor: int | None = None  # the highest company id seen
        self._floors_read = False

    def observe_responses(self, hook: ResponseHook) -> None:
        """Call `hook` with every answer this client gets (the worker counts API calls)."""
        self._http.event_hooks["response"].append(hook)

    def observe_requests(self, hook: RequestHook) -> None:
        """Await `hook` before every request this client sends (the worker's call budget)."""
        self._http.event_hooks["request"].append(hook)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> BrightpearlClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # ---- transport ------------------------------------------------------------------

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        field: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """One call; a GET turned away for a moment is sent again (`read_retries`)."""

        def send() -> Awaitable[Any]:
            return self._request_once(
                method, path, params=params, json=json, field=field, headers=headers
            )

        return await (read_with_retries(send) if method == "GET" else send())

    async def _request_once(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None,
        json: Any,
        field: str | None,
        headers: Mapping[str, str] | None,
    ) -> Any:
        try:
            response = await self._http.request(
                method, path, params=params, json=json, headers=headers
            )
        except httpx.TimeoutException:
            raise TransientError(SYSTEM, f"timed out: {method} {path}") from None
        except httpx.HTTPError as exc:
            raise TransientError(SYSTEM, f"{type(exc).__name__}: {method} {path}") from None
        self._note_throttle(response)
        status = response.status_code
        if status < 300:
            try:
                data = response.json() if response.content else {}
            except ValueError:
                raise TransientError(
                    SYSTEM, f"unreadable answer to {method} {path}", status=status
                ) from None
            if isinstance(data, dict) and data.get("errors") and status == 207:
                raise PermanentError(SYSTEM, _messages(data), status=status, field=field)
            return data.get("response") if isinstance(data, dict) else data
        message = _error_message(response)
        if status == 503 or status == 429:
            raise ThrottledError(
                SYSTEM, message, status=status, retry_after_s=_retry_after(response)
            )
        if status >= 500:
            raise TransientError(SYSTEM, message, status=status)
        if status in (401, 403):
            raise AuthenticationFailed(SYSTEM, message, status=status)
        if status == 404:
            raise NotFound(SYSTEM, message, status=status)
        found = _FIELD.match(_first_message(response))
        raise ValidationFailed(
            SYSTEM, message, status=status, field=found.group(1) if found else field
        )

    def _note_throttle(self, response: httpx.Response) -> None:
        remaining = response.headers.get("brightpearl-requests-remaining")
        period = response.headers.get("brightpearl-next-throttle-period")
        if remaining is not None and remaining.strip().lstrip("-").isdigit():
            self.requests_remaining = int(remaining)
        if period is not None and period.strip().isdigit():
            self.next_throttle_period_ms = int(period)

    async def _search(
        self, path: str, params: Mapping[str, Any], *, page_size: int = MAX_PAGE_SIZE
    ) -> AsyncIterator[Json]:
        """Every row of a `*-search`, page by page; a 404 (no results) ends it."""
        first = 1
        size = max(1, min(page_size, MAX_PAGE_SIZE))
        while True:
            try:
                data = await self._request(
                    "GET", path, params={**params, "firstResult": first, "pageSize": size}
                )
            except NotFound:
                return
            for row in mapping.search_rows(data):
                yield row
            meta = data.get("metaData") or {}
            last, available = int(meta.get("lastResult", 0)), int(meta.get("resultsAvailable", 0))
            if last >= available or last < first:
                return
            first = last + 1

    async def _get_by_ids(
        self, path: str, ids: Iterable[int], *, batch_size: int = MAX_GET_IDS
    ) -> list[Any]:
        """`GET {path}/{ID-SET}` for every batch; an all-missing batch (404) adds nothing."""
        found: list[Any] = []
        for batch in chunks(ids, batch_size):
            try:
                data = await self._request("GET", f"{path}/{format_id_set(batch)}")
            except NotFound:
                continue
            if isinstance(data, list):
                found.extend(data)
            elif isinstance(data, dict):
                found.append(data)
        return found

    def _lk(self, lookups: BrightpearlLookups | None) -> BrightpearlLookups:
        return lookups or self.lookups

    # ---- contacts -------------------------------------------------------------------

    async def find_contact_by_email(self, email: str) -> int | None:
        """The lowest contact id whose primary e-mail is `email` (see
        `find_contact_ids_by_email`), or None."""
        found = await self.find_contact_ids_by_email(email)
        return found[0] if found else None

    async def _create_addresses(
        self,
        customer: Customer,
        memory: AttemptMemory = NO_MEMORY,
        settle: timedelta = timedelta(0),
    ) -> dict[str, int]:
        """The customer's postal addresses by role (`DEF`, `BIL`, `DEL`): one when billing
        and shipping are the same place; each reused from `memory` when an earlier
        attempt made it (see the module's docstring)."""
        billing, shipping = customer.billing_address, customer.shipping_address
        if billing is None and shipping is None:
            return {}
        first = billing or shipping
        assert first is not None
        try:
            for address in (billing, shipping):
                if address is not None:
                    mapping.address_to_postal(address)
        except ValueError as exc:
            raise ValidationFailed(SYSTEM, str(exc), field="address.country") from None
        first_id = await self._postal_address(
            customer,
            first,
            "DEF",
            memory,
            settle,
            field="billing_address" if billing else "shipping_address",
        )
        ids = {"DEF": first_id, "BIL": first_id, "DEL": first_id}
        if (
            billing is not None
            and shipping is not None
            and not mapping.same_postal(billing, shipping)
        ):
            ids["DEL"] = await self._postal_address(
                customer, shipping, "DEL", memory, settle, field="shipping_address"
            )
        return ids

    async def _postal_address(
        self,
        customer: Customer,
        address: Address,
        role: str,
        memory: AttemptMemory,
        settle: timedelta,
        *,
        field: str,
    ) -> int:
        """`POST postal-address`, unless this activity's earlier attempt made the same one
        for the same customer in the same role: then its id, from `memory` when that
        attempt got the answer, else found among the addresses made since it was sent.

        A POST whose answer was lost may have made the address, perhaps later than its
        retry: Brightpearl documents no postal-address search or delete, but Postal
        Address GET takes an ID set (https://api-docs.brightpearl.com/contact/postal-address/get.html)
        and ids only grow [INFERRED: they are sequential in every answer seen]. So the
        send records the highest address id this client knew (`floor`); a retry reads
        the ids above it (`_first_above`) and reuses an address with the same
        body; finding none, it sends no second POST until the pair's
        `duplicate_check_after` has passed since the first (`uncertain_creates`), then
        looks again and only then posts."""
        body = mapping.address_to_postal(address)
        email = customer.email.strip().casefold()
        key = f"brightpearl.postal-address.{role}.{fingerprint(email, body)}"
        wanted = _postal_fields(body)
        made = await self._made_before(
            memory,
            key,
            "contact-service/postal-address",
            lambda native: _postal_fields(native, keys=body.keys()) == wanted,
            id_field="addressId",
        )
        if made is not None:
            return made
        if self._address_floor is None:
            await self._read_floors()
        with sending_create(memory, SYSTEM, key, settle, what="postal address"):
            memory.put(f"{key}.floor", str(self._address_floor or 0))
            address_id = int(
                await self._request(
                    "POST", "contact-service/postal-address", json=body, field=field
                )
            )
        self._saw_address_ids([address_id])
        memory.put(key, str(address_id))
        return address_id

    def _saw_address_ids(self, ids: Iterable[int]) -> None:
        """Keep the highest postal-address id seen: the floor of a later look-up."""
        highest = max(ids, default=None)
        if highest is not None and (self._address_floor is None or highest > self._address_floor):
            self._address_floor = highest

    def _saw_company_ids(self, ids: Iterable[int]) -> None:
        """Keep the highest company id seen: the floor of a later look-up."""
        highest = max(ids, default=None)
        if highest is not None and (self._company_floor is None or highest > self._company_floor):
            self._company_floor = highest

    def _saw_contacts(self, natives: Iterable[Json]) -> None:
        """The postal-address and company ids a Contact GET answered: floors."""
        for native in natives:
            ids = (native.get("postAddressIds") or {}).values()
            self._saw_address_ids(int(v) for v in ids if str(v).isdigit())
            company = _company_id(native)
            if company is not None:
                self._saw_company_ids([company])

    async def _read_floors(self) -> None:
        """Once per client: floors for the look-up after a create whose answer is lost,
        read from the newest contacts (a floor only has to be below the record the lost
        create made). Contact Search sorted by `contactId.DESC` answers the newest id, and
        Contact GET of the ID set of the `MAX_GET_IDS` ids up to it (invalid ids ignored,
        https://api-docs.brightpearl.com/contact/contact/get.html) their address ids and
        companies. An account with no contact, or no company among them, has floor 0."""
        if self._floors_read:
            return
        try:
            data = await self._request(
                "GET",
                "contact-service/contact-search",
                params={
                    "columns": "contactId",
                    "sort": "contactId.DESC",
                    "firstResult": 1,
                    "pageSize": 1,
                },
            )
            rows = mapping.search_rows(data)
        except NotFound:
            rows = []
        if rows:
            newest = int(rows[0]["contactId"])
            span = range(max(1, newest - MAX_GET_IDS + 1), newest + 1)
            self._saw_contacts(await self._get_by_ids("contact-service/contact", span))
        self._address_floor = self._address_floor or 0
        self._company_floor = self._company_floor or 0
        self._floors_read = True

    async def _made_before(
        self,
        memory: AttemptMemory,
        key: str,
        path: str,
        matches: Callable[[Json], bool],
        *,
        id_field: str,
    ) -> int | None:
        """The record an earlier attempt of this activity made: its id from `memory` when
        that attempt got the answer, else found above the id floor it noted when it sent
        the create (`_first_above`); None when no attempt made it (yet)."""
        made = memory.get(key)
        if made is not None and made.isdigit():
            return int(made)
        floor = memory.get(f"{key}.floor")
        if floor is None or not floor.isdigit():
            return None
        found = await self._first_above(path, int(floor), matches, id_field=id_field)
        if found is not None:
            memory.put(key, str(found))
        return found

    async def _first_above(
        self, path: str, floor: int, matches: Callable[[Json], bool], *, id_field: str
    ) -> int | None:
        """The lowest id above `floor` at `path` whose record `matches`, reading the ids
        above it in ID sets of `MAX_GET_IDS` until one holds none (the newest passed) or
        `ABOVE_FLOOR_BATCHES` were read. Ids only grow [INFERRED: they are sequential in
        every answer seen]."""
        start = floor + 1
        for _ in range(ABOVE_FLOOR_BATCHES):
            found = await self._get_by_ids(path, range(start, start + MAX_GET_IDS))
            if not found:
                return None
            ids = [int(native.get(id_field, native.get("id"))) for native in found]
            for record_id, native in sorted(zip(ids, found, strict=True)):
                if matches(native):
                    return record_id
            start += MAX_GET_IDS
        return None

    async def create_contact(
        self,
        customer: Customer,
        lookups: BrightpearlLookups | None = None,
        *,
        memory: AttemptMemory = NO_MEMORY,
        settle: timedelta = timedelta(0),
    ) -> int:
        """Postal address(es) first (reused from `memory`), then the contact; answers the
        contact id."""
        address_ids = await self._create_addresses(customer, memory, settle)
        body = mapping.customer_to_contact(customer, address_ids, self._lk(lookups))
        return int(
            await self._request("POST", "contact-service/contact", json=body, field="customer")
        )

    async def get_contact(self, contact_id: int) -> Customer:
        return await self._customer_of(await self.get_contact_native(contact_id))

    async def _customer_of(self, native: Json) -> Customer:
        """The contact as a `Customer`, its postal addresses read when Contact GET left them
        out (`postalAddresses` is optional there, https://api-docs.brightpearl.com/contact/contact/get.html)."""
        contact = dict(native)
        ids = contact.get("postAddressIds") or {}
        if ids and not contact.get("postalAddresses"):
            addresses = await self._get_by_ids(
                "contact-service/postal-address", sorted({int(v) for v in ids.values()})
            )
            contact["postalAddresses"] = {
                str(a.get("addressId", a.get("id"))): a for a in addresses
            }
        return mapping.contact_from_native(contact)

    async def update_contact(
        self,
        contact_id: int,
        customer: Customer,
        *,
        memory: AttemptMemory = NO_MEMORY,
        settle: timedelta = timedelta(0),
    ) -> None:
        """Makes the contact say what `customer` says, writing only what differs (a record
        written back, such as a merge's snapshot, leaves the contact as it was), each part
        through the message Brightpearl documents for it:

        - names, primary e-mail and telephone: Contact PATCH on its documented paths
          (`mapping.CONTACT_PATCH_DOCS`); a telephone made empty is removed;
        - the company: Company POST (its id remembered in `memory` for a retry), then
          Contact PATCH `/companyId`; no message clears a contact's company, so an empty
          company leaves it as it is;
        - addresses: `PUT postal-address/{id}` changes the contact's own addresses in
          place; a second address (billing and shipping now apart) is posted (reused from
          `memory`) and linked by Contact Postal Address PUT. No message unlinks an address,
          so a customer without addresses leaves the contact's as they are;
        - active or not: Contact Status PUT.
        """
        native = await self.get_contact_native(contact_id)
        current = await self._customer_of(native)
        ops = [
            _emptying(op)
            for op in mapping.customer_patch(customer)
            if _changes(native, str(op["path"]), op["value"])
        ]
        company = customer.company.strip()
        if company and company != current.company:
            ops.append(mapping.company_patch(await self._company(company, memory, settle)))
        if ops:
            await self.patch_contact(contact_id, ops)
        if not (
            _same_postal(current.billing_address, customer.billing_address)
            and _same_postal(current.shipping_address, customer.shipping_address)
        ):
            await self._write_addresses(contact_id, native, customer, memory, settle)
        if current.active != customer.active:
            await self.set_contact_active(contact_id, customer.active)

    async def _company(self, name: str, memory: AttemptMemory, settle: timedelta) -> int:
        """The company of this name, made at most once (issue #13).

        Brightpearl groups contacts sharing a company name into one company
        (BP-HELP 212646383) but documents no company search, and Company POST
        (https://api-docs.brightpearl.com/contact/company/post.html) answers only the id:
        nothing keeps a name unique. So:
        - a company a contact of this name already belongs to is reused: Contact Search
          by `companyName` (a SEARCH_STRING, compared exactly here), then that contact's
          `organisation.organisationId` (Contact GET);
        - an earlier attempt's id is reused from `memory`;
        - a POST whose answer was lost is found again among the company ids above the
          highest one this client knew when it was sent (Company GET takes an ID set,
          https://api-docs.brightpearl.com/contact/company/get.html; [INFERRED] its
          records carry `id` and `name`), and no second POST is sent while the first may
          still land (`uncertain_creates`, the pair's `duplicate_check_after`)."""
        key = f"brightpearl.company.{fingerprint(name)}"
        wanted = name.strip().casefold()
        made = await self._made_before(
            memory,
            key,
            "contact-service/company",
            lambda native: str(native.get("name") or "").strip().casefold() == wanted,
            id_field="id",
        )
        if made is not None:
            return made
        existing = await self._company_of_contacts_named(name)
        if existing is not None:
            memory.put(key, str(existing))
            return existing
        if self._company_floor is None:
            await self._read_floors()
        with sending_create(memory, SYSTEM, key, settle, what="company"):
            memory.put(f"{key}.floor", str(self._company_floor or 0))
            company_id = int(
                await self._request(
                    "POST", "contact-service/company", json={"name": name}, field="company"
                )
            )
        self._saw_company_ids([company_id])
        memory.put(key, str(company_id))
        return company_id

    async def _company_of_contacts_named(self, name: str) -> int | None:
        """The company of the lowest contact whose company name is `name` (case and
        blanks aside), or None."""
        wanted = name.strip().casefold()
        async for row in self._search(
            "contact-service/contact-search",
            {
                "companyName": name.strip(),
                "columns": "contactId,companyName",
                "sort": "contactId.ASC",
            },
        ):
            if str(row.get("companyName") or "").strip().casefold() != wanted:
                continue
            native = await self.get_contact_native(int(row["contactId"]))
            company = _company_id(native)
            if company is not None:
                return company
        return None

    async def _write_addresses(
        self,
        contact_id: int,
        native: Json,
        customer: Customer,
        memory: AttemptMemory,
        settle: timedelta,
    ) -> None:
        """The customer's billing and shipping addresses onto the contact's own postal
        addresses, changed in place by Postal Address PUT
        (https://api-docs.brightpearl.com/contact/postal-address/put.html: idempotent, so a
        retry whose first answer was lost leaves no second address). An address the
        contact lacks is posted (reused from `memory`) and linked to its roles by Contact
        Postal Address PUT (https://api-docs.brightpearl.com/contact/contact-postal-address/put.html)."""
        billing, shipping = customer.billing_address, customer.shipping_address
        first = billing or shipping
        if first is None:
            return
        try:
            for address in (billing, shipping):
                if address is not None:
                    mapping.address_to_postal(address)
        except ValueError as exc:
            raise ValidationFailed(SYSTEM, str(exc), field="address.country") from None
        have = {str(k): int(v) for k, v in (native.get("postAddressIds") or {}).items() if v}
        main = have.get("BIL") or have.get("DEF")
        links: dict[str, int] = {}
        if main is None:
            main = await self._postal_address(
                customer, first, "DEF", memory, settle, field="billing_address"
            )
            links.update(DEF=main, BIL=main)
        else:
            await self._put_postal(main, first, field="billing_address")
            links.update({role: main for role in ("DEF", "BIL") if have.get(role) != main})
        apart = (
            billing is not None
            and shipping is not None
            and not mapping.same_postal(billing, shipping)
        )
        if apart:
            assert shipping is not None
            delivery = have.get("DEL")
            if delivery is None or delivery == main:
                delivery = await self._postal_address(
                    customer, shipping, "DEL", memory, settle, field="shipping_address"
                )
                links["DEL"] = delivery
            else:
                await self._put_postal(delivery, shipping, field="shipping_address")
        elif have.get("DEL") != main:
            links["DEL"] = main
        if links:
            await self._request(
                "PUT",
                f"contact-service/contact/{int(contact_id)}/postal-address",
                json=[
                    {"postalAddressId": address_id, "type": role}
                    for role, address_id in sorted(links.items())
                ],
                field="address",
            )

    async def _put_postal(self, address_id: int, address: Address, *, field: str) -> None:
        await self._request(
            "PUT",
            f"contact-service/postal-address/{int(address_id)}",
            json=mapping.address_to_postal(address),
            field=field,
        )

    async def iter_contacts_changed_since(
        self, since: datetime, *, batch_size: int = MAX_GET_IDS
    ) -> AsyncIterator[Customer]:
        ids = [
            int(row["contactId"])
            async for row in self._search(
                "contact-service/contact-search",
                {
                    "updatedOn": f"{mapping.bp_datetime(since)}/",
                    "columns": "contactId",
                    "sort": "contactId.ASC",
                },
            )
        ]
        for batch in chunks(ids, min(batch_size, MAX_GET_IDS)):
            for contact in await self._get_by_ids("contact-service/contact", batch):
                yield mapping.contact_from_native(contact)

    async def find_contact_ids_by_email(self, email: str) -> list[int]:
        """Ids of the contacts whose primary e-mail is `email` (case and blanks aside),
        ascending.

        Contact Search types `primaryEmail` a SEARCH_STRING, not a STRING
        (https://api-docs.brightpearl.com/contact/contact/search.html): a search term, a
        "String contained in contact's primary email address" as a public client puts it
        (github.com/langabi/Brightpearl-PHP src/resources/contact.php; the web app's
        e-mail search is a fuzzy match, https://help.brightpearl.com/hc/en-us/articles/211129586).
        So every row of every page is compared with the address itself before it is
        used: `ann@example.com` never answers with `joann@example.com`'s contact."""
        wanted = email.strip().casefold()
        return [
            int(row["contactId"])
            async for row in self._search(
                "contact-service/contact-search",
                {
                    "primaryEmail": email.strip(),
                    "columns": "contactId,primaryEmail",
                    "sort": "contactId.ASC",
                },
            )
            if str(row.get("primaryEmail") or "").strip().casefold() == wanted
        ]

    async def get_contact_native(self, contact_id: int) -> Json:
        """The contact as Brightpearl answers it (`postAddressIds`, `organisation`, ...);
        its address and company ids raise the floors of the look-ups after a lost create."""
        found = await self._request("GET", f"contact-service/contact/{int(contact_id)}")
        contact: Json = found[0] if isinstance(found, list) else found
        self._saw_contacts([contact])
        return contact

    async def set_contact_active(self, contact_id: int, active: bool) -> None:
        """Contact Status PUT (`PUT contact/{id}/status` with `{"contactStatusId": n}`,
        https://api-docs.brightpearl.com/contact/contact-status/put.html): only the status,
        nothing else of the contact. It answers 207 with a status per contact; a contact
        it did not find is `NotFound`, like the 404 it answers when none matched."""
        answer = await self._request(
            "PUT",
            f"contact-service/contact/{int(contact_id)}/status",
            json={"contactStatusId": mapping.contact_status_id(active)},
            field="active",
        )
        statuses = (answer or {}).get("resourceStatuses") or {}
        status = statuses.get(str(int(contact_id)))
        if status is None or int(status) == 200:
            return
        errors = ((answer or {}).get("resourceErrors") or {}).get(str(int(contact_id))) or []
        message = _messages({"errors": errors}) or f"contact {contact_id}: status {status}"
        if int(status) == 404:
            raise NotFound(SYSTEM, message, status=404)
        raise ValidationFailed(SYSTEM, message, status=int(status), field="active")

    async def patch_contact(self, contact_id: int, ops: list[Json]) -> None:
        """`PATCH contact/{id}` with these JSON-Patch operations as they are: only paths
        Contact PATCH documents (`mapping.CONTACT_PATCH_DOCS`)."""
        await self._request(
            "PATCH", f"contact-service/contact/{int(contact_id)}", json=ops, field="customer"
        )

    # ---- products -------------------------------------------------------------------

    async def find_products_by_sku(
        self, skus: Iterable[str], *, per_sku_below: int = 5
    ) -> dict[str, int]:
        """SKU -> product id for the SKUs that exist. Few SKUs: one filtered search each;
        more: one paged listing of `productId,SKU`."""
        wanted = list(dict.fromkeys(sku for sku in skus if sku))
        found: dict[str, int] = {}
        if len(wanted) < per_sku_below:
            for sku in wanted:
                async for row in self._search(
                    "product-service/product-search",
                    {"SKU": sku, "columns": "productId,SKU", "sort": "productId.ASC"},
                ):
                    if row.get("SKU") == sku:
                        found[sku] = int(row["productId"])
                        break
        else:
            remaining = set(wanted)
            async for row in self._search(
                "product-service/product-search",
                {"columns": "productId,SKU", "sort": "productId.ASC"},
            ):
                sku = str(row.get("SKU") or "")
                if sku in remaining:
                    found[sku] = int(row["productId"])
                    remaining.discard(sku)
        for sku, product_id in found.items():
            self._sku_by_id[product_id] = sku
        return found

    async def _product_id(self, product: str | int) -> int:
        if isinstance(product, int):
            return product
        found = await self.find_products_by_sku([product])
        if product not in found:
            raise ValidationFailed(SYSTEM, f"unknown SKU {product!r}", field="sku")
        return found[product]

    async def _products(self, ids: list[int], lookups: BrightpearlLookups) -> list[Product]:
        natives = await self._get_by_ids("product-service/product", ids)
        prices = {
            int(p["productId"]): p
            for p in await self._get_by_ids("product-service/product-price", ids)
        }
        products = []
        for native in natives:
            product = mapping.product_from_native(native, prices.get(int(native["id"])), lookups)
            self._sku_by_id[int(native["id"])] = product.sku
            products.append(product)
        return products

    async def get_product(
        self, product_id: int, lookups: BrightpearlLookups | None = None
    ) -> Product:
        products = await self._products([int(product_id)], self._lk(lookups))
        if not products:
            raise NotFound(SYSTEM, f"product {product_id} not found", status=404)
        return products[0]

    async def iter_products_changed_since(
        self,
        since: datetime,
        lookups: BrightpearlLookups | None = None,
        *,
        batch_size: int = MAX_GET_IDS,
    ) -> AsyncIterator[Product]:
        ids = [
            int(row["productId"])
            async for row in self._search(
                "product-service/product-search",
                {
                    "updatedOn": f"{mapping.bp_datetime(since)}/",
                    "columns": "productId",
                    "sort": "productId.ASC",
                },
            )
        ]
        for batch in chunks(ids, min(batch_size, MAX_GET_IDS)):
            for product in await self._products(batch, self._lk(lookups)):
                yield product

    # ---- stock ----------------------------------------------------------------------

    async def get_availability(
        self,
        product_ids: Mapping[int, str] | Iterable[int],
        *,
        batch_size: int = 100,
        warehouse_id: int | None = None,
    ) -> list[StockLevel]:
        """Availability per product, one `product-availability/{ID-SET}` call per batch.

        Pass `{product id: sku}` to spare the SKU look-up; otherwise SKUs this client has
        seen are reused and the rest read with one `product/{ID-SET}` call per batch.
        `warehouse_id=None` answers the totals over all warehouses.
        """
        if isinstance(product_ids, Mapping):
            skus = {int(k): str(v) for k, v in product_ids.items()}
            ids = list(skus)
        else:
            ids = [int(i) for i in product_ids]
            skus = {i: self._sku_by_id[i] for i in ids if i in self._sku_by_id}
        levels: list[StockLevel] = []
        as_of = datetime.now(UTC)
        for batch in chunks(ids, min(batch_size, MAX_GET_IDS)):
            try:
                data = await self._request(
                    "GET", f"warehouse-service/product-availability/{format_id_set(batch)}"
                )
            except NotFound:
                continue
            unknown = [i for i in batch if i not in skus and str(i) in data]
            if unknown:
                for native in await self._get_by_ids("product-service/product", unknown):
                    sku = str((native.get("identity") or {}).get("sku") or "")
                    skus[int(native["id"])] = self._sku_by_id[int(native["id"])] = sku
            for product_id in batch:
                entry = data.get(str(product_id))
                if entry is None or product_id not in skus:
                    continue
                levels.append(
                    mapping.availability_from_native(
                        skus[product_id], entry, warehouse_id=warehouse_id, as_of=as_of
                    )
                )
        return levels

    async def correct_stock(
        self,
        product: str | int,
        delta: int,
        reason: str,
        *,
        warehouse_id: int | None = None,
        cost: Decimal | None = None,
        currency: str | None = None,
        lookups: BrightpearlLookups | None = None,
    ) -> list[int]:
        """A stock correction (signed delta) by SKU or product id; answers goods-note ids.

        Adding stock needs a cost: when none is given, the product's price in the cost
        price list (`lookups.cost_price_list_id`) is used (one extra call).
        """
        lk = self._lk(lookups)
        if delta == 0:
            raise ValidationFailed(
                SYSTEM, "a stock correction needs a non-zero quantity", field="delta"
            )
        product_id = await self._product_id(product)
        warehouse = warehouse_id or lk.warehouse_id
        correction: Json = {
            "quantity": delta,
            "productId": product_id,
            "reason": reason,
            "locationId": lk.location_id,
        }
        if delta > 0:
            if cost is None:
                prices = await self._get_by_ids("product-service/product-price", [product_id])
                price = mapping.product_price(prices[0] if prices else None, lk.cost_price_list_id)
                cost, found_currency = (
                    price if price is not None else (Decimal("0"), lk.base_currency)
                )
                currency = currency or found_currency
            correction["cost"] = {
                "currency": currency or lk.base_currency,
                "value": mapping.money_str(cost),
            }
        result = await self._request(
            "POST",
            f"warehouse-service/warehouse/{warehouse}/stock-correction",
            json={"corrections": [correction]},
            field="corrections[0]",
        )
        return [int(i) for i in (result if isinstance(result, list) else [result])]

    # ---- goods-in notes ---------------------------------------------------------------

    async def get_goods_in_notes(self, order_id: int) -> dict[int, Json]:
        """The goods-in notes of an order (a sales credit's received goods), by note id."""
        try:
            notes = await self._request(
                "GET", f"warehouse-service/order/{int(order_id)}/goods-note/goods-in"
            )
        except NotFound:
            return {}
        return {int(note_id): note for note_id, note in (notes or {}).items()}

    async def receive_goods(
        self,
        order_id: int,
        rows: Mapping[int, tuple[int, int]],
        lookups: BrightpearlLookups | None = None,
        *,
        unit_values: Mapping[int, Decimal] | None = None,
        currency: str | None = None,
    ) -> int:
        """Goods back on hand against a sales credit: one goods-in note for `rows` (row id
        -> (product id, quantity)), as docs/systems/brightpearl.md §11 says returned goods
        come back; `unit_values` (row id -> value of one item) become each movement's
        `productValue`.

        The body is Goods-In Note POST's (`goodsMoved[]`; `purchaseOrderRowId` names the
        row also for a sales credit, as Goods-In Note GET documents). Idempotent on the
        order: a note already there (an earlier attempt whose answer was lost) is
        returned, so goods are never received twice."""
        existing = await self.get_goods_in_notes(order_id)
        if existing:
            return min(existing)
        lk = self._lk(lookups)
        values = unit_values or {}
        body = {
            "transfer": False,
            "warehouseId": lk.warehouse_id,
            "receivedOn": mapping.bp_datetime(datetime.now(UTC)),
            "goodsMoved": [
                {
                    "purchaseOrderRowId": int(row_id),
                    "productId": int(product_id),
                    "quantity": int(quantity),
                    "destinationLocationId": lk.location_id,
                    **(
                        {
                            "productValue": {
                                "currency": currency or lk.base_currency,
                                "value": mapping.money_str(values[row_id]),
                            }
                        }
                        if row_id in values
                        else {}
                    ),
                }
                for row_id, (product_id, quantity) in rows.items()
            ],
        }
        result = await self._request(
            "POST",
            f"warehouse-service/order/{int(order_id)}/goods-note/goods-in",
            json=body,
            field="goodsMoved",
        )
        return int(result[0] if isinstance(result, list) else result)

    async def delete_goods_in_note(self, note_id: int) -> None:
        """Undo a goods-in note: its goods leave stock and its accounting entries are
        reversed (refused once its stock has moved on); already gone: nothing to do."""
        try:
            await self._request("DELETE", f"warehouse-service/goods-note/goods-in/{int(note_id)}")
        except NotFound:
            return

    # ---- orders ---------------------------------------------------------------------

    async def _find_order(
        self, reference: str, order_type_id: int, parent: int | None = None
    ) -> int | None:
        params: Json = {
            "customerRef": reference,
            "orderTypeId": order_type_id,
            "columns": "orderId,customerRef,orderTypeId",
            "sort": "orderId.ASC",
        }
        if parent is not None:
            params["parentOrderId"] = parent
        async for row in self._search("order-service/order-search", params):
            if row.get("customerRef") == reference:
                return int(row["orderId"])
        return None

    async def find_order_by_reference(self, store_order_number: str) -> int | None:
        """The sales order whose `reference` (search column `customerRef`) is the number."""
        return await self._find_order(store_order_number, 1)

    async def _get_native_order(self, order_id: int) -> Json:
        found = await self._request("GET", f"order-service/order/{int(order_id)}")
        order: Json = found[0] if isinstance(found, list) else found
        return order

    async def get_order_native(self, order_id: int) -> Json:
        """The order as Brightpearl answers it (`parties`, `orderRows`, ...)."""
        return await self._get_native_order(order_id)

    async def patch_order(self, order_id: int, ops: list[Json], *, field: str) -> None:
        """`PATCH order/{id}` with these JSON-Patch operations; `field` names the input a
        refusal is about."""
        await self._request("PATCH", f"order-service/order/{int(order_id)}", json=ops, field=field)

    def iter_sales_orders_of_contact(self, contact_id: int) -> AsyncIterator[Json]:
        """`orderId` / `orderStatusId` rows of the contact's sales orders (`orderTypeId` 1),
        by `orderId` ascending."""
        return self._search(
            "order-service/order-search",
            {
                "contactId": int(contact_id),
                "orderTypeId": 1,
                "columns": "orderId,orderStatusId",
                "sort": "orderId.ASC",
            },
        )

    async def _post_missing_rows(self, order_id: int, existing: Json, rows: list[Json]) -> None:
        have = Counter(mapping.row_key(row) for row in (existing.get("orderRows") or {}).values())
        for index, row in enumerate(rows):
            key = mapping.row_key(row)
            if have[key] > 0:
                have[key] -= 1
                continue
            await self._request(
                "POST", f"order-service/order/{order_id}/row", json=row, field=f"rows[{index}]"
            )

    async def _product_ids_for(
        self, lines: list[OrderLine], known: Mapping[str, int] | None = None
    ) -> dict[str, int]:
        """SKU -> product id of every line: from `known` (what the caller has already
        read), the rest searched."""
        skus = [line.sku for line in lines if line.sku]
        product_ids = {sku: known[sku] for sku in skus if known and sku in known}
        missing = [sku for sku in skus if sku not in product_ids]
        if missing:
            product_ids.update(await self.find_products_by_sku(missing))
        for index, line in enumerate(lines):
            if line.sku and line.sku not in product_ids:
                raise ValidationFailed(
                    SYSTEM,
                    f"no Brightpearl product with SKU {line.sku!r}",
                    field=f"lines[{index}].sku",
                )
        return product_ids

    async def _sales_order_body(
        self,
        order: Order,
        contact_id: int,
        lk: BrightpearlLookups,
        product_ids: Mapping[str, int] | None,
    ) -> tuple[Json, list[Json]]:
        try:
            ids = await self._product_ids_for(order.lines, product_ids)
            rows = mapping.order_rows_to_native(order, ids, lk)
            body = mapping.order_to_atomic(
                order, contact_id, rows, lk, self.settings.installed_integration_instance_id
            )
        except ValueError as exc:
            raise ValidationFailed(SYSTEM, str(exc), field="order") from None
        return body, rows

    async def create_sales_order(
        self,
        order: Order,
        contact_id: int,
        lookups: BrightpearlLookups | None = None,
        *,
        product_ids: Mapping[str, int] | None = None,
    ) -> int:
        """The order with its rows in one atomic create (`POST sales-order`), idempotent on
        the server: `externalRef` (the store order number) + `installedIntegrationInstanceId`
        is Brightpearl's unique key, so a request that lands late (its worker killed, the
        retry already done) is refused instead of making a second order. Refused as a
        duplicate, the order with that key is the answer.

        An order found by reference first may be one the legacy create (header, then one
        POST per row) left half made: its missing rows are posted. `post_sales_order` is
        the same create without that look.
        """
        lk = self._lk(lookups)
        body, rows = await self._sales_order_body(order, contact_id, lk, product_ids)
        order_id = await self.find_order_by_reference(order.number)
        if order_id is not None:
            existing = await self._get_native_order(order_id)
            await self._post_missing_rows(order_id, existing, rows)
            return order_id
        made, _ = await self._post_sales_order(body, order.number)
        return made

    async def post_sales_order(
        self,
        order: Order,
        contact_id: int,
        lookups: BrightpearlLookups | None = None,
        *,
        product_ids: Mapping[str, int] | None = None,
    ) -> tuple[int, bool]:
        """`POST sales-order` straight away, no search first: the unique `externalRef` +
        `installedIntegrationInstanceId` (docs/systems/brightpearl.md §6) makes a second
        create of the same store order a refusal, answered with the order holding the
        key. Returns (order id, whether this call made it). Only for orders no legacy
        create can have half made (`create_sales_order` completes those)."""
        lk = self._lk(lookups)
        body, _ = await self._sales_order_body(order, contact_id, lk, product_ids)
        return await self._post_sales_order(body, order.number)

    async def _post_sales_order(self, body: Json, external_ref: str) -> tuple[int, bool]:
        try:
            made = await self._request(
                "POST", "order-service/sales-order", json=body, field="order"
            )
            return int(made), True
        except ValidationFailed:
            found = await self._find_by_external_ref(external_ref)
            if found is None:
                raise
            return found, False

    async def _find_by_external_ref(self, external_ref: str) -> int | None:
        """The sales order holding the unique key (`externalRef`, this integration)."""
        params: Json = {
            "externalRef": external_ref,
            "installedIntegrationInstanceId": self.settings.installed_integration_instance_id,
            "orderTypeId": 1,
            "columns": "orderId,externalRef",
            "sort": "orderId.ASC",
        }
        async for row in self._search("order-service/order-search", params):
            if row.get("externalRef") == external_ref:
                return int(row["orderId"])
        return None

    async def get_order(self, order_id: int, lookups: BrightpearlLookups | None = None) -> Order:
        return mapping.order_from_native(await self._get_native_order(order_id), self._lk(lookups))

    async def set_order_status(
        self,
        order_id: int,
        status: OrderStatus | str | int,
        note: str = "",
        lookups: BrightpearlLookups | None = None,
    ) -> None:
        status_id = (
            status if isinstance(status, int) else mapping.status_id(status, self._lk(lookups))
        )
        body: Json = {"orderStatusId": status_id}
        if note:
            body["orderNote"] = {"text": note, "isPublic": False, "fileId": None}
        await self._request(
            "PUT", f"order-service/order/{int(order_id)}/status", json=body, field="status"
        )

    async def add_order_note(self, order_id: int, text: str, *, public: bool = False) -> int:
        return int(
            await self._request(
                "POST",
                f"order-service/order/{int(order_id)}/note",
                json={"text": text, "isPublic": public, "fileId": None},
                field="note",
            )
        )

    async def cancel_order(
        self,
        order_id: int,
        note: str = "Cancelled by commerce-sync",
        lookups: BrightpearlLookups | None = None,
    ) -> None:
        """Sets the cancelled status (idempotent: cancelling twice changes nothing)."""
        await self.set_order_status(order_id, OrderStatus.CANCELLED, note, lookups)

    async def iter_orders_changed_since(
        self,
        since: datetime,
        lookups: BrightpearlLookups | None = None,
        *,
        batch_size: int = MAX_GET_IDS,
    ) -> AsyncIterator[Order]:
        ids = [
            int(row["orderId"])
            async for row in self._search(
                "order-service/order-search",
                {
                    "updatedOn": f"{mapping.bp_datetime(since)}/",
                    "orderTypeId": 1,
                    "columns": "orderId,updatedOn",
                    "sort": "orderId.ASC",
                },
            )
        ]
        for batch in chunks(ids, min(batch_size, MAX_GET_IDS)):
            for native in await self._get_by_ids("order-service/order", batch):
                yield mapping.order_from_native(native, self._lk(lookups))

    # ---- payments -------------------------------------------------------------------

    async def _find_payment(self, reference: str, method_code: str) -> Json | None:
        async for row in self._search(
            "accounting-service/customer-payment-search",
            {
                "transactionRef": reference,
                "paymentMethodCode": method_code,
                "sort": "paymentId.ASC",
            },
        ):
            if (
                row.get("transactionRef") == reference
                and row.get("paymentMethodCode") == method_code
            ):
                return row
        return None

    async def _post_payment(self, body: Json) -> int:
        try:
            return int(
                await self._request(
                    "POST", "accounting-service/customer-payment", json=body, field="payment"
                )
            )
        except ValidationFailed:
            existing = await self._find_payment(body["transactionRef"], body["paymentMethodCode"])
            if existing is None:
                raise
            if (
                int(existing["orderId"]) != int(body["orderId"])
                or existing["paymentType"] != body["paymentType"]
            ):
                raise ValidationFailed(
                    SYSTEM,
                    f"transactionRef {body['transactionRef']!r} is already used by payment "
                    f"{existing['paymentId']} on order {existing['orderId']}",
                    status=400,
                    field="payment.reference",
                ) from None
            return int(existing["paymentId"])

    async def record_payment(
        self, order_id: int, payment: Payment, lookups: BrightpearlLookups | None = None
    ) -> int:
        """A RECEIPT against the sales order. Idempotent: a payment with the same
        `transactionRef` + `paymentMethodCode` answers the existing payment's id."""
        body = mapping.payment_to_native(
            payment, int(order_id), self._lk(lookups), payment_type="RECEIPT"
        )
        return await self._post_payment(body)

    async def reverse_payment(
        self, order_id: int, payment: Payment, lookups: BrightpearlLookups | None = None
    ) -> int:
        """Compensates `record_payment`: a VOID of the same amount, `transactionRef`
        `{reference}-void` (idempotent like any payment). [INFERRED] use of VOID."""
        reversal = payment.model_copy(
            update={"reference": f"{payment.reference}-void", "paid_at": None}
        )
        body = mapping.payment_to_native(
            reversal, int(order_id), self._lk(lookups), payment_type="VOID"
        )
        return await self._post_payment(body)

    async def get_payments(
        self, order_id: int, lookups: BrightpearlLookups | None = None
    ) -> list[Payment]:
        return [
            mapping.payment_from_native(row, self._lk(lookups))
            async for row in self._search(
                "accounting-service/customer-payment-search",
                {"orderId": int(order_id), "sort": "paymentId.ASC"},
            )
        ]

    # ---- shipments ------------------------------------------------------------------

    async def _shipments(
        self, notes: Mapping[str, Any], lookups: BrightpearlLookups, include_unshipped: bool
    ) -> list[Shipment]:
        skus: dict[str, str] = {}
        for order_id in sorted({int(note["orderId"]) for note in notes.values()}):
            order = await self._get_native_order(order_id)
            for row_id, row in (order.get("orderRows") or {}).items():
                skus[str(row_id)] = str(row.get("productSku") or "")
        shipments = []
        for note_id, note in sorted(notes.items(), key=lambda kv: int(kv[0])):
            if not include_unshipped and not (note.get("status") or {}).get("shipped"):
                continue
            shipments.append(mapping.shipment_from_native(note_id, note, skus, lookups))
        return shipments

    async def get_shipments(
        self,
        order_id: int,
        lookups: BrightpearlLookups | None = None,
        *,
        include_unshipped: bool = False,
    ) -> list[Shipment]:
        """The order's goods-out notes (shipped ones unless asked), tracking from
        `shipping.reference`."""
        try:
            notes = await self._request(
                "GET", f"warehouse-service/order/{int(order_id)}/goods-note/goods-out"
            )
        except NotFound:
            return []
        return await self._shipments(notes, self._lk(lookups), include_unshipped)

    async def get_note_shipment(
        self, note_id: int, lookups: BrightpearlLookups | None = None
    ) -> Shipment:
        notes = await self._request(
            "GET", f"warehouse-service/order/*/goods-note/goods-out/{int(note_id)}"
        )
        shipments = await self._shipments(notes, self._lk(lookups), include_unshipped=True)
        return shipments[0]

    async def ship_goods_out_note(self, note_id: int, *, occurred: datetime | None = None) -> None:
        """Posts the `SHW` (shipped) event on a goods-out note."""
        event = {
            "eventCode": "SHW",
            "occured": mapping.bp_datetime(occurred or datetime.now(UTC)),
            "eventOwnerId": 4,
        }
        await self._request(
            "POST",
            f"warehouse-service/goods-note/goods-out/{int(note_id)}/event",
            json={"events": [event]},
        )

    # ---- credits and refunds --------------------------------------------------------

    async def sales_credits_of(self, parent_order_id: int) -> list[Json]:
        """Every sales credit of the order (`orderId`, `customerRef`, `externalRef`,
        `orderStatusId`), lowest id first; one search, whatever the references."""
        return [
            row
            async for row in self._search(
                "order-service/order-search",
                {
                    "parentOrderId": int(parent_order_id),
                    "orderTypeId": 3,
                    "columns": "orderId,customerRef,externalRef,orderStatusId",
                    "sort": "orderId.ASC",
                },
            )
        ]

    @staticmethod
    def credit_reference(row: Json) -> str:
        """The return reference a credit carries: `externalRef` (the atomic create), or
        `customerRef` for credits made by the legacy create before it."""
        return str(row.get("externalRef") or row.get("customerRef") or "")

    async def create_sales_credit(
        self,
        parent_order_id: int,
        lines: list[OrderLine],
        *,
        reference: str,
        lookups: BrightpearlLookups | None = None,
    ) -> int:
        """A sales credit for `lines` of the parent order, header and rows in one request
        (`POST order-service/sales-credit`, docs/systems/brightpearl.md §11), so its rows
        can be neither half made nor made twice; `externalRef` carries the return's
        reference.

        Exactly once: nothing is documented unique on a credit's `externalRef`, so a
        search of the order's credits comes first (a retry finds what an earlier attempt
        made), and a create that lands after its retry's search makes a twin that the
        return run's twin check cancels (port.py `remove_return_twins`). A credit the
        legacy two-step create (header, then rows) made before this is found by its
        `reference` and gets the rows it lacks."""
        lk = self._lk(lookups)
        parent = await self._get_native_order(parent_order_id)
        by_sku = {
            str(row.get("productSku")): int(row["productId"])
            for row in (parent.get("orderRows") or {}).values()
            if row.get("productId") and row.get("productSku")
        }
        missing = [line for line in lines if line.sku and line.sku not in by_sku]
        if missing:
            by_sku.update(await self._product_ids_for(missing))
        try:
            rows = [mapping.line_to_row(line, by_sku.get(line.sku), lk) for line in lines]
        except ValueError as exc:
            raise ValidationFailed(SYSTEM, str(exc), field="lines") from None
        cancelled = lk.order_status_ids.get("cancelled", 5)
        for row in await self.sales_credits_of(parent_order_id):
            if self.credit_reference(row) != reference or row.get("orderStatusId") == cancelled:
                continue
            credit_id = int(row["orderId"])
            if not row.get("externalRef"):  # a legacy create's, maybe half made
                await self._post_missing_rows(
                    credit_id, await self._get_native_order(credit_id), rows
                )
            return credit_id
        parties = parent.get("parties") or {}
        body = {
            "customer": {"id": (parties.get("customer") or {}).get("contactId")},
            "parentId": int(parent_order_id),
            "statusId": mapping.status_id(OrderStatus.PENDING, lk),
            "warehouseId": parent.get("warehouseId", lk.warehouse_id),
            "externalRef": reference,
            "rows": [mapping.atomic_row(row) for row in rows],
        }
        return int(
            await self._request("POST", "order-service/sales-credit", json=body, field="credit")
        )

    async def cancel_sales_credit(
        self, credit_id: int, lookups: BrightpearlLookups | None = None
    ) -> None:
        await self.set_order_status(
            credit_id, OrderStatus.CANCELLED, "Credit cancelled by commerce-sync", lookups
        )

    async def refund(
        self, credit_id: int, payment: Payment, lookups: BrightpearlLookups | None = None
    ) -> int:
        """Money out: a PAYMENT against the sales credit, idempotent on `transactionRef`."""
        refund = payment.model_copy(update={"kind": PaymentKind.REFUND})
        body = mapping.payment_to_native(
            refund, int(credit_id), self._lk(lookups), payment_type="PAYMENT"
        )
        return await self._post_payment(body)

    # ---- webhooks -------------------------------------------------------------------

    async def register_webhook(
        self,
        subscribe_to: str,
        uri_template: str,
        *,
        body_template: str | None = DOCUMENTED_BODY_TEMPLATE,
        http_method: str = "POST",
        id_set_accepted: bool = True,
        quality_of_service: int = 1,
        content_type: str = "application/json",
    ) -> int:
        body = {
            "subscribeTo": subscribe_to,
            "httpMethod": http_method,
            "uriTemplate": uri_template,
            "bodyTemplate": body_template,
            "contentType": content_type,
            "idSetAccepted": id_set_accepted,
            "qualityOfService": quality_of_service,
        }
        return int(
            await self._request("POST", "integration-service/webhook", json=body, field="webhook")
        )

    async def list_webhooks(self) -> list[Json]:
        try:
            found = await self._request("GET", "integration-service/webhook")
        except NotFound:
            return []
        return list(found or [])

    async def delete_webhook(self, webhook_id: int) -> None:
        await self._request("DELETE", f"integration-service/webhook/{int(webhook_id)}")


def _messages(data: Any) -> str:
    errors = data.get("errors") if isinstance(data, dict) else None
    if not errors:
        return ""
    return "; ".join(f"{e.get('code', '')}: {e.get('message', '')}".strip(": ") for e in errors)


def _error_message(response: httpx.Response) -> str:
    try:
        text = _messages(response.json())
    except ValueError:
        text = ""
    return text or f"HTTP {response.status_code}"


def _first_message(response: httpx.Response) -> str:
    try:
        errors = response.json().get("errors") or [{}]
        return str(errors[0].get("message") or "")
    except (ValueError, AttributeError):
        return ""


def _same_postal(current: Address | None, wanted: Address | None) -> bool:
    if current is None or wanted is None:
        return current is wanted
    return mapping.same_postal(current, wanted)


def _changes(native: Mapping[str, Any], path: str, wanted: Any) -> bool:
    """Whether setting `path` to `wanted` changes the record (empty and absent are the same)."""
    value: Any = native
    for part in path.strip("/").split("/"):
        value = value.get(part) if isinstance(value, Mapping) else None
    if value in (None, "") and wanted in (None, ""):
        return False
    return bool(value != wanted)


def _emptying(op: Json) -> Json:
    """A telephone made empty is removed (Contact PATCH allows every operation on
    `/communication/telephones/*`): a contact's telephones are the numbers it has."""
    path = str(op["path"])
    if path.startswith("/communication/telephones/") and op["value"] in (None, ""):
        return {"op": "remove", "path": path}
    return op


def _postal_fields(address: Json, keys: Iterable[str] | None = None) -> dict[str, str]:
    """The postal fields named by `keys` (all of `address`'s by default), trimmed and in
    any case: two addresses saying the same compare equal."""
    names = sorted(keys if keys is not None else address.keys())
    return {name: str(address.get(name) or "").strip().casefold() for name in names}


def _retry_after(response: httpx.Response) -> float:
    """When to try a 503/429 again: the pause the throttle headers ask of every call
    (`budget.throttle_pause`: the next period once its requests are spent, a 429's
    Retry-After), else a second. Every Brightpearl answer carries
    `brightpearl-next-throttle-period`, so a 503 that leaves requests remaining (an
    unavailability, not the throttle) is not told to wait out the period (up to a minute)
    [INFERRED from docs/systems/brightpearl.md §4: the 503 is documented only for a spent
    period]."""
    pause = throttle_pause(response)
    return UNAVAILABLE_RETRY_S if pause is None else pause


__all__ = ["BrightpearlClient", "ConnectorError"]


def _company_id(contact: Json) -> int | None:
    """A contact's `organisation.organisationId`, when it belongs to a company."""
    value = str((contact.get("organisation") or {}).get("organisationId") or "")
    return int(value) if value.isdigit() and int(value) > 0 else None
