"""The per-process reference cache of the ERP connectors (`systems/expiring.py`)."""

from commerce_sync.systems.expiring import ExpiringMap


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_an_entry_is_served_until_it_expires_then_asked_again() -> None:
    clock = Clock()
    products: ExpiringMap[str, int] = ExpiringMap(60.0, clock=clock)
    products.update({"WIDGET-1": 1001, "WIDGET-2": 1002})
    clock.now += 59.9
    assert products.found(["WIDGET-1", "WIDGET-2", "GADGET"]) == {
        "WIDGET-1": 1001,
        "WIDGET-2": 1002,
    }
    products.put("WIDGET-2", 1002)  # stored again: lives from now
    clock.now += 0.1
    assert products.get("WIDGET-1") is None
    assert products.found(["WIDGET-1", "WIDGET-2"]) == {"WIDGET-2": 1002}
    assert len(products) == 1


def test_forgotten_entries_are_asked_again() -> None:
    products: ExpiringMap[str, int] = ExpiringMap(600.0, clock=Clock())
    products.update({"WIDGET-1": 1001, "WIDGET-2": 1002})
    products.forget(["WIDGET-1", "NEVER-SEEN"])
    assert products.found(["WIDGET-1", "WIDGET-2"]) == {"WIDGET-2": 1002}
