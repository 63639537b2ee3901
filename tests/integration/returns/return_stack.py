"""Helpers of the return tests: ship an order through the real order workflow, ask for
a return in the store sandbox, follow the return run through the API, and read the
sandboxes' records of the return (credits, refunds, stock, the store's return status)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from tests.integration.orders.order_stack import PAIRS, Stack, eventually

Json = dict[str, Any]


@dataclass
class ShippedOrder:
    pair: str
    store: str
    erp: str
    order_id: str
    number: str
    erp_order_id: str


@dataclass
class ReturnStack:
    stack: Stack
    last_event: tuple[str, str] = ("", "")

    async def shipped_order(self, pair: str, lines: list[Json], **overrides: Any) -> ShippedOrder:
        """A shopper's order, synced by the order workflow and shipped in the ERP."""
        store, erp = PAIRS[pair]
        order_id = await self.stack.place_order(store, lines=lines, **overrides)
        status = (await self.stack.wait_state(pair, order_id, "awaiting_shipment"))["status"]
        await self.stack.ship(
            erp,
            status["erp_order_id"] if erp == "brightpearl" else status["erp_order_number"],
            f"1Z{order_id:0>8}",
        )
        await self.stack.wait_state(pair, order_id, "shipped", run_status="COMPLETED")
        return ShippedOrder(
            pair, store, erp, order_id, status["store_order_number"], status["erp_order_id"]
        )

    async def request_return(self, store: str, order_id: str, lines: list[Json]) -> str:
        """The shopper asks for a return; the store fires `return.requested`."""
        response = await self.stack.sandbox.post(
            f"/{store}/_sandbox/returns",
            json={"order": order_id, "lines": lines, "reason": "does not fit"},
        )
        assert response.status_code in (200, 201), response.text
        self.last_event = (store, str(response.json()["event_id"]))
        return str(response.json()["id"])

    async def redeliver_last_event(self) -> None:
        store, event_id = self.last_event
        response = await self.stack.sandbox.post(f"/{store}/_sandbox/events/{event_id}/redeliver")
        assert response.status_code == 200, response.text

    async def return_status(self, pair: str, rma_id: str) -> Json | None:
        response = await self.stack.http.get(
            f"{self.stack.api}/returns/{pair}/{rma_id}", headers=self.stack.headers()
        )
        if response.status_code == 404:
            return None
        assert response.status_code == 200, response.text
        result: Json = response.json()
        return result

    async def wait_return(
        self,
        pair: str,
        rma_id: str,
        *states: str,
        run_status: str | None = None,
        timeout_s: float = 60.0,
    ) -> Json:
        async def check() -> Json | None:
            status = await self.return_status(pair, rma_id)
            if not status or status["status"]["state"] not in states:
                return None
            if run_status is not None and status["run_status"] != run_status:
                return None
            return status

        return await eventually(check, timeout_s, f"return {pair}/{rma_id} in {states}")

    # ---- what the sandboxes hold ---------------------------------------------------

    async def store_return_status(self, store: str, rma_id: str) -> str:
        state = await self.stack.state_of(store)
        if store == "kentico":
            rows = state["customtableitem.commercesync.returnrequest"]
            return str(next(r for r in rows if str(r["ItemID"]) == rma_id)["ReturnStatus"])
        return str(next(r for r in state["returns"] if str(r["id"]) == rma_id)["status"])

    async def credits(self, order: ShippedOrder) -> list[Json]:
        """The ERP's credits / return orders of the order, cancelled ones included."""
        state = await self.stack.state_of(order.erp)
        if order.erp == "brightpearl":
            return [
                o
                for o in state["orders"].values()
                if o.get("orderTypeCode") == "SC"
                and str(o.get("parentOrderId")) == order.erp_order_id
            ]
        return [
            o
            for o in state["entities"].get("SalesOrder", [])
            if o.get("OrderType") == "RC" and o.get("ExternalRef") == f"xcart:{order.order_id}"
        ]

    @staticmethod
    def credit_cancelled(erp: str, credit: Json) -> bool:
        if erp == "brightpearl":
            return int(credit["orderStatus"]["orderStatusId"]) == 5
        return credit.get("Status") == "Canceled"

    @staticmethod
    def credit_lines(erp: str, credit: Json) -> dict[str, int]:
        if erp == "brightpearl":
            return {
                str(row["productSku"]): int(Decimal(row["quantity"]["magnitude"]))
                for row in credit["orderRows"].values()
                if row.get("productId")
            }
        return {str(row["InventoryID"]): int(Decimal(row["OrderQty"])) for row in credit["Details"]}

    async def refunds(self, erp: str, reference: str) -> list[tuple[str, Decimal, str]]:
        """(type, amount, currency) of the money movements keyed by the return's reference."""
        state = await self.stack.state_of(erp)
        if erp == "brightpearl":
            return [
                (p["paymentType"], Decimal(p["amountPaid"]), p["currencyCode"])
                for p in state["payments"].values()
                if p["transactionRef"] in (reference, f"{reference}-void")
            ]
        return [
            (
                "VOID" if p.get("Status") == "Voided" else "PAYMENT",
                Decimal(str(p["PaymentAmount"])),
                str(p.get("CurrencyID") or "USD"),
            )
            for p in state["entities"].get("Payment", [])
            if p.get("Type") == "Refund" and p.get("PaymentRef") == reference
        ]

    async def on_hand(self, erp: str, sku: str) -> Decimal:
        state = await self.stack.state_of(erp)
        if erp == "brightpearl":
            product_id = next(
                pid for pid, p in state["products"].items() if p["identity"]["sku"] == sku
            )
            figures = state["stock"][product_id]
            return sum((Decimal(str(w["inStock"])) for w in figures.values()), Decimal("0"))
        return sum(
            (Decimal(str(row["QtyOnHand"])) for row in state["stock"] if row["InventoryID"] == sku),
            Decimal("0"),
        )


# ---- snapshots of what a return touches --------------------------------------------


async def touched_records(rs: ReturnStack, order: ShippedOrder, rma_id: str) -> Json:
    """The records a return changes, as the sandboxes hold them: the ERP's stock, the
    sales order and its payments, the store's return status (clock stamps left out)."""
    state = await rs.stack.state_of(order.erp)
    if order.erp == "brightpearl":
        sales_order = dict(state["orders"][order.erp_order_id])
        sales_order.pop("updatedOn", None)
        stock: Any = state["stock"]
        payments = [
            p for p in state["payments"].values() if str(p["orderId"]) == order.erp_order_id
        ]
    else:
        order_nbr = order.erp_order_id.split("/")[-1]
        sales_order = next(
            dict(o)
            for o in state["entities"]["SalesOrder"]
            if o.get("OrderType") == "SO" and o.get("OrderNbr") == order_nbr
        )
        for stamp in ("LastModified", "LastModifiedDateTime"):
            sales_order.pop(stamp, None)
        stock = [
            {k: v for k, v in row.items() if k != "LastModifiedDateTime"} for row in state["stock"]
        ]
        payments = [p for p in state["entities"].get("Payment", []) if p.get("Type") == "Payment"]
    return {
        "stock": stock,
        "sales_order": sales_order,
        "payments": payments,
        "store_return_status": await rs.store_return_status(order.store, rma_id),
    }
