"""Unit tests for stream_workers.offset_holes: a skipped offset is noticed, redeliveries and
rebalances are not holes."""

from __future__ import annotations

from stream_workers.offset_holes import OffsetHoles


def test_contiguous_batches_have_no_hole() -> None:
    holes = OffsetHoles()
    assert holes.find(1, [(0, 549), (1, 10), (0, 550)]) == {}
    assert holes.find(1, [(0, 551), (1, 11)]) == {}


def test_the_ci_failure_a_single_skipped_offset_is_a_hole() -> None:
    holes = OffsetHoles()
    assert holes.find(2, [(0, o) for o in range(549, 761)]) == {}
    assert holes.find(2, [(0, 762), (0, 763), (1, 5)]) == {0: 761}


def test_after_a_hole_the_redelivery_continues_the_partition() -> None:
    holes = OffsetHoles()
    holes.find(2, [(0, 759), (0, 760)])
    assert holes.find(2, [(0, 762)]) == {0: 761}
    assert holes.find(2, [(0, 763)]) == {0: 761}  # still missing: asked again
    assert holes.find(2, [(0, 761), (0, 762), (0, 763), (0, 764)]) == {}


def test_redeliveries_below_the_expected_offset_are_not_holes() -> None:
    holes = OffsetHoles()
    holes.find(1, [(0, 100), (0, 101)])
    assert holes.find(1, [(0, 90), (0, 91), (0, 102)]) == {}


def test_a_new_generation_starts_afresh() -> None:
    holes = OffsetHoles()
    holes.find(1, [(0, 100)])
    assert holes.find(2, [(0, 5000)]) == {}  # another worker moved the partition on
    assert holes.find(2, [(0, 5001)]) == {}
