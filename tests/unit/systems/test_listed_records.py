"""Records an order listing answered, kept for the read that follows (`systems/listed.py`)."""

from commerce_sync.systems.listed import ListedRecords


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_listed_record_stands_in_for_a_read_until_it_expires() -> None:
    clock = Clock()
    listed = ListedRecords(60.0, clock=clock)
    listed.keep([("1", {"OrderID": 1}), ("2", {"OrderID": 2})])
    clock.now += 59.9
    found, missing = listed.take(["2", "3", "1", "2"])
    assert found == {"2": {"OrderID": 2}, "1": {"OrderID": 1}}
    assert missing == ["3"]
    clock.now += 0.1
    assert listed.take(["1"]) == ({}, ["1"])


def test_a_later_listing_replaces_a_record_and_lets_the_expired_go() -> None:
    clock = Clock()
    listed = ListedRecords(60.0, clock=clock)
    listed.keep([("1", {"OrderStatusID": 1}), ("2", {"OrderStatusID": 1})])
    clock.now += 30
    listed.keep([("1", {"OrderStatusID": 7})])
    clock.now += 45  # the first listing's "2" expired, the second's "1" lives
    assert listed.take(["1", "2"]) == ({"1": {"OrderStatusID": 7}}, ["2"])
    listed.keep([])
    assert len(listed._records) == 1
