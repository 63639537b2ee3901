"""`up` keeps its children's logs bounded: a log past its size is copied to `.1` (older
copies shift, the oldest beyond the count goes) and emptied in place, so the child, which
appends through its open file, keeps writing to it."""

from __future__ import annotations

from pathlib import Path

from sandboxes.embedded import rotate_log


def test_a_log_past_its_size_is_copied_and_emptied_in_place(tmp_path: Path) -> None:
    log = tmp_path / "api.log"
    assert not rotate_log(log, max_bytes=10)  # no log yet
    with open(log, "ab") as child:  # how `up` opens a child's log
        for round_ in range(5):
            child.write(f"round {round_} ".encode() * 4)
            child.flush()
            assert rotate_log(log, max_bytes=10, keep=3)
        child.write(b"after")
        child.flush()
    assert log.read_bytes() == b"after"
    kept = sorted(p.name for p in tmp_path.iterdir())
    assert kept == ["api.log", "api.log.1", "api.log.2", "api.log.3"]
    assert (tmp_path / "api.log.1").read_bytes().startswith(b"round 4")
    assert (tmp_path / "api.log.3").read_bytes().startswith(b"round 2")
    assert not rotate_log(log, max_bytes=10)
