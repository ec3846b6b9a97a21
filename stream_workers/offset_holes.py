"""Noticing a message the stream never handed to the persist agent.

In a clean-clone CI run one event of 6,000 was lost after a worker SIGKILL: the restarted
worker's agent received offsets 549-760 and 762-1508 of a partition but never 761, and
faust-streaming 0.15 committed 1509 all the same. Its `Consumer._new_offset` treats acked
offsets as contiguous with the committed one when `min(acked) - committed <= 1`, and the
committed offset is the *next* one to read, so a single offset missing right after it is not
seen as a gap. Whatever made the stream skip it, the agent can notice: within one consumer
generation each partition's offsets must arrive without holes. On a hole the agent seeks the
partition back to the missing offset, and the redelivered messages are stored (idempotently).
"""

from __future__ import annotations

from collections.abc import Iterable


class OffsetHoles:
    """Per partition, the next offset the agent should receive in this consumer generation."""

    def __init__(self) -> None:
        self._expected: dict[int, int] = {}
        self._generation: int | None = None

    def find(self, generation: int, delivered: Iterable[tuple[int, int]]) -> dict[int, int]:
        """Record one batch's (partition, offset) pairs in delivery order; return the holes
        as {partition: first offset never delivered}.

        A new generation (a rebalance) starts afresh: partitions may come back at offsets
        another worker reached. An offset below the expected one is a redelivery (after a seek
        or a rebalance) and changes nothing. After a hole the partition keeps expecting the
        missing offset, so the redelivery the seek brings is taken as the continuation.
        """
        if generation != self._generation:
            self._expected.clear()
            self._generation = generation
        holes: dict[int, int] = {}
        for partition, offset in delivered:
            if partition in holes:
                continue
            expected = self._expected.get(partition)
            if expected is not None and offset > expected:
                holes[partition] = expected
            elif expected is None or offset == expected:
                self._expected[partition] = offset + 1
        return holes
