"""The ERP's echo of orders the store counted itself. Pure: the inventory push calls it.

A clean push cycle sets a SKU's store figure to exactly `available - safety stock - held`
(held: the store orders not yet in the ERP; nothing cut off at 0). From then on the store
takes each order off its own count as it is placed, and the ERP takes an order off its
`available` when the order sync creates it there, which is just before the order's link
is written. So while nothing else happens, the ERP's change since that cycle's read is
minus the quantities of the orders linked since that cycle's links query, and the store
is still right: the figure the full cycle would write is linear in both, and each linked
order moves from "held" (or "placed since") into the ERP's own count.

When the change is anything else, the store may be wrong and is asked (a full cycle):
- a receipt, a count or a cancelled ERP order moves `available` the orders do not explain;
- an order the ERP took before its link was written (its stock webhook came first) was
  held back by the cycle and is in the ERP's figure too: it is counted twice until the
  link appears and the change then fails to match;
- a linked order whose quantities are unknown (linked before they were kept);
- a linked order the push had read as not open (cancelled or shipped in the store): the
  cycle did not hold it back, so the store figure it set was not exact for it;
- a figure that would now fall below what is still held: the store cannot show it.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping, Sequence

from pydantic import BaseModel, Field


class StockBase(BaseModel):
    """What a SKU's store figure was last set from, when a clean cycle set it exactly:
    store = available - safety_stock - held back, with nothing cut off at 0."""

    available: int = Field(description="the ERP's available quantity the cycle read")
    safety_stock: int
    mark: int = Field(description="the highest order link id when the cycle asked the links")


class LinkedOrder(BaseModel):
    """A store order linked to its ERP order, and what the ERP order took from stock."""

    order_id: str
    link_id: int
    quantities: dict[str, int] | None = Field(
        description="per SKU, as the ERP order took them; None: linked before they were kept"
    )


def shown_right(
    skus: Iterable[str],
    bases: Mapping[str, StockBase],
    available: Mapping[str, int],
    linked: Sequence[LinkedOrder],
    still_held: Mapping[str, int],
    unheld: Container[str],
    safety_stock: int,
) -> set[str]:
    """The SKUs whose store figure is still right: their ERP change since their base is
    exactly minus the quantities of the orders linked after their base's mark.

    `linked` must hold every order linked after each SKU's base mark that takes the SKU
    or whose quantities are unknown; `still_held` the quantities of store orders held
    back and not in `linked`; `unheld` the store orders the push read as not open."""
    right: set[str] = set()
    for sku in skus:
        base = bases.get(sku)
        if base is None or sku not in available:
            continue
        since = [order for order in linked if order.link_id > base.mark]
        if any(order.quantities is None for order in since):
            continue
        taking = [order for order in since if (order.quantities or {}).get(sku, 0)]
        if any(order.order_id in unheld for order in taking):
            continue
        taken = sum((order.quantities or {})[sku] for order in taking)
        if available[sku] - base.available != -taken:
            continue
        if available[sku] - safety_stock - still_held.get(sku, 0) < 0:
            continue
        right.add(sku)
    return right
