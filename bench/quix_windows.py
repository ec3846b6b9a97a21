"""The same 5-minute aggregation written with Quix Streams, for `make bench` only.

Runs in a separate virtualenv that has quixstreams (the project does not depend on it):

    python bench/quix_windows.py BOOTSTRAP TOPIC EVENTS

Windows per message key (app|env|event) over 5 minutes: count, mean latency, all latencies
collected for p95, failures. Prints the events/s from the first message to the last.
"""

from __future__ import annotations

import sys
import time
import uuid
from datetime import timedelta

from quixstreams import Application
from quixstreams.dataframe.windows.aggregations import Collect, Count, Mean, Reduce


def main() -> None:
    bootstrap, topic_name, events = sys.argv[1], sys.argv[2], int(sys.argv[3])
    app = Application(
        broker_address=bootstrap,
        consumer_group=f"quix-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        state_dir=f"/tmp/quix-{uuid.uuid4().hex}",
    )
    topic = app.topic(topic_name, value_deserializer="json", key_deserializer="str")
    seen = {"n": 0, "first": 0.0, "last": 0.0}

    def count(value: dict) -> dict:
        now = time.perf_counter()
        seen["first"] = seen["first"] or now
        seen["n"] += 1
        seen["last"] = now
        if seen["n"] >= events:
            app.stop()
        return value

    sdf = app.dataframe(topic).update(count)
    sdf = (
        sdf.tumbling_window(timedelta(minutes=5))
        .agg(
            total=Count(),
            avg_latency_ms=Mean("latency_ms"),
            latencies=Collect("latency_ms"),
            failures=Reduce(
                lambda acc, v: acc + (0 if v["ok"] else 1), lambda v: 0 if v["ok"] else 1
            ),
        )
        .final()
    )
    app.run()
    print(seen["n"] / max(seen["last"] - seen["first"], 1e-9))


if __name__ == "__main__":
    main()
