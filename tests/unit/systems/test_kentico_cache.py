"""The Kentico client's reference data cache: entries live `ttl_s` seconds, then the next
call reads afresh."""

from commerce_sync.systems.kentico.cache import Expiring


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_entry_lives_until_its_ttl_and_is_then_gone() -> None:
    clock = Clock()
    cache: Expiring[int, str] = Expiring(60.0, clock)
    cache.put(1, "WIDGET-1")
    clock.now += 59.9
    assert cache.get(1) == "WIDGET-1"
    clock.now += 0.1
    assert cache.get(1) is None


def test_missing_names_each_key_without_a_live_entry_once_in_order() -> None:
    clock = Clock()
    cache: Expiring[int, str] = Expiring(60.0, clock)
    cache.put_many([(1, "A"), (2, "B")])
    clock.now += 30
    cache.put(3, "C")
    assert cache.missing([4, 1, 3, 4, 2]) == [4]
    clock.now += 30  # 1 and 2 expire, 3 lives on
    assert cache.missing([4, 1, 3, 4, 2]) == [4, 1, 2]
