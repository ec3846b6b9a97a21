"""Load through the real gateway, recording every event id it answered 201 for.

Clients behave like `ops_client`: each batch carries ids generated here and is retried with the
same ids on 408/429/5xx and on connection errors (honouring Retry-After), so an event the
gateway acknowledged twice is still one row. Every answer is recorded with its send and answer
times, so a scenario can count statuses inside a fault's time span.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import aiohttp
import orjson

from stream_workers.windows.buckets import BUCKET_SECONDS, bucket_start

#: Answers worth retrying (as ops_client.retry.RETRYABLE_STATUSES).
RETRYABLE = frozenset({408, 429, 500, 502, 503, 504})
#: Status recorded for an attempt that got no HTTP answer (refused, reset, timed out).
NO_ANSWER = 0
ENVS = ("prod", "staging")
EVENTS = ("login", "checkout", "search", "payment")


@dataclass(frozen=True)
class LoadSpec:
    """What to send: `events` for `app` in batches of `batch`, at `rate` events/s overall
    from `concurrency` clients, with event times spread over `buckets` closed 5-minute
    buckets (the newest starts `newest_bucket_back` buckets before the current one, so it
    ended at least 5 minutes ago and the workers close them at once); each event fails with
    probability `failure_rate`."""

    app: str
    events: int
    rate: float
    batch: int = 100
    concurrency: int = 16
    buckets: int = 6
    #: A batch not acknowledged this long after its first attempt is abandoned (counted).
    give_up_s: float = 300.0
    request_timeout_s: float = 30.0
    seed: int = 0
    failure_rate: float = 0.08
    newest_bucket_back: int = 2

    @property
    def batches(self) -> int:
        """How many requests' worth of events (the last may be smaller)."""
        return -(-self.events // self.batch)


@dataclass(frozen=True, slots=True)
class Answer:
    """One attempt: when it was sent and answered (time.monotonic()), and how."""

    sent: float
    done: float
    status: int  #: HTTP status, or NO_ANSWER
    events: int
    error: str = ""  #: exception class when there was no answer
    retry_after: str = ""  #: the Retry-After header of a refusal
    batch: int = -1  #: which batch of the load


@dataclass
class LoadRecord:
    """Everything one load did; filled while it runs, so scenarios can watch it live."""

    spec: LoadSpec
    started: float = 0.0
    finished: float = 0.0
    acked_ids: list[str] = field(default_factory=list)
    acked_batches: dict[int, list[str]] = field(default_factory=dict)
    answers: list[Answer] = field(default_factory=list)
    first_attempts: int = 0
    gave_up_events: int = 0
    rejected_events: int = 0
    in_flight: int = 0  #: requests sent and not answered yet

    @property
    def acknowledged(self) -> int:
        """Events answered 201 so far."""
        return len(self.acked_ids)

    def statuses(
        self,
        since: float | None = None,
        until: float | None = None,
        *,
        answered_in_span: bool = False,
    ) -> Counter[str]:
        """Answers by status ("201", "503", "no answer: …"), of attempts sent in
        [since, until] (or, with `answered_in_span`, sent at/after `since` and answered by
        `until`)."""
        lo = since if since is not None else float("-inf")
        hi = until if until is not None else float("inf")
        counts: Counter[str] = Counter()
        for a in self.answers:
            if a.sent < lo:
                continue
            if (a.done if answered_in_span else a.sent) > hi:
                continue
            counts[_label(a)] += 1
        return counts

    def acked_between(self, since: float, until: float) -> int:
        """Events of 201 answers that arrived in [since, until]."""
        return sum(a.events for a in self.answers if a.status == 201 and since <= a.done <= until)

    def first_ack_after(self, moment: float) -> float | None:
        """When the first 201 to a request sent after `moment` arrived (None: none did)."""
        done = [a.done for a in self.answers if a.status == 201 and a.sent >= moment]
        return min(done) if done else None

    def last_answer(self) -> float:
        """When the last answer arrived."""
        return max((a.done for a in self.answers), default=self.started)

    def summary(self) -> dict[str, object]:
        """The load as the report shows it."""
        seconds = max(self.finished - self.started, 1e-9)
        return {
            "events": self.spec.events,
            "events per request": self.spec.batch,
            "clients": self.spec.concurrency,
            "target rate, events/s": self.spec.rate,
            "duration, s": round(seconds, 1),
            "acknowledged rate, events/s": round(self.acknowledged / seconds, 1),
            "requests": len(self.answers),
            "retried requests": len(self.answers) - self.first_attempts,
            "abandoned events": self.gave_up_events,
            "rejected events": self.rejected_events,
        }


def _label(answer: Answer) -> str:
    return str(answer.status) if answer.status != NO_ANSWER else f"no answer: {answer.error}"


def closed_buckets(count: int, newest_back: int = 2) -> list[int]:
    """Starts (epoch s) of `count` consecutive 5-minute buckets, the newest starting
    `newest_back` buckets before the current one, newest first."""
    newest = bucket_start(datetime.now(UTC)) - newest_back * BUCKET_SECONDS
    return [newest - BUCKET_SECONDS * i for i in range(count)]


class EventFactory:
    """Events for one app over `buckets` closed buckets and 8 series, with failures and NULL
    latencies; ids are random UUIDs (unique across runs).

    `failure_rate` and `bucket_starts` may be changed while a load runs (a scenario's
    incident ends); batches made from then on follow them."""

    def __init__(self, spec: LoadSpec) -> None:
        self._spec = spec
        self._rng = random.Random(spec.seed)
        self.failure_rate = spec.failure_rate
        self.bucket_starts = closed_buckets(spec.buckets, spec.newest_bucket_back)

    def batch(self, size: int) -> list[dict[str, object]]:
        """`size` fresh events."""
        rng = self._rng
        out: list[dict[str, object]] = []
        for _ in range(size):
            start = rng.choice(self.bucket_starts)
            ts = datetime.fromtimestamp(start + rng.uniform(0, BUCKET_SECONDS - 0.001), UTC)
            event: dict[str, object] = {
                "id": str(uuid.uuid4()),
                "app": self._spec.app,
                "env": rng.choice(ENVS),
                "event": rng.choice(EVENTS),
                "ok": rng.random() > self.failure_rate,
                "ts": ts.isoformat(),
            }
            if rng.random() > 0.15:
                event["latency_ms"] = int(rng.lognormvariate(4, 1)) % 10_000
            if not event["ok"]:
                event["err_code"] = rng.choice(("E_TIMEOUT", "E_DECLINED", "E_500"))
            out.append(event)
        return out


async def run_load(
    url: str,
    api_key: str,
    spec: LoadSpec,
    record: LoadRecord | None = None,
    *,
    url_for: Callable[[], str] | None = None,
    factory: EventFactory | None = None,
) -> LoadRecord:
    """POST `spec.events` to `url` (`…/telemetry`) paced at `spec.rate`, retrying each batch
    with its ids until 201 or `spec.give_up_s`; returns (and fills) the record.

    `url_for`, when given, is asked for the URL before every attempt (a scenario may move
    the gateway); `factory`, when given, makes the events (a scenario may change it while
    the load runs)."""
    record = record or LoadRecord(spec)
    factory = factory or EventFactory(spec)
    headers = {"X-API-Key": api_key, "Content-Type": "application/json"}
    interval = spec.batch / spec.rate
    next_batch = 0
    record.started = time.monotonic()
    connector = aiohttp.TCPConnector(limit=spec.concurrency)
    timeout = aiohttp.ClientTimeout(total=spec.request_timeout_s)

    async def attempt(session: aiohttp.ClientSession, body: bytes, size: int, index: int) -> Answer:
        sent = time.monotonic()
        target = url_for() if url_for is not None else url
        record.in_flight += 1
        try:
            async with session.post(target, data=body, headers=headers) as response:
                await response.read()
                retry_after = response.headers.get("Retry-After", "")
                answer = Answer(
                    sent,
                    time.monotonic(),
                    response.status,
                    size,
                    retry_after=retry_after,
                    batch=index,
                )
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            answer = Answer(
                sent, time.monotonic(), NO_ANSWER, size, type(exc).__name__, batch=index
            )
        finally:
            record.in_flight -= 1
        record.answers.append(answer)
        return answer

    async def client(session: aiohttp.ClientSession) -> None:
        nonlocal next_batch
        while next_batch < spec.batches:
            index, next_batch = next_batch, next_batch + 1
            due = record.started + index * interval
            await asyncio.sleep(max(due - time.monotonic(), 0))
            size = min(spec.batch, spec.events - index * spec.batch)
            events = factory.batch(size)
            body = orjson.dumps(events)
            first = time.monotonic()
            record.first_attempts += 1
            tries = 0
            while True:
                answer = await attempt(session, body, size, index)
                tries += 1
                if answer.status == 201:
                    ids = [str(e["id"]) for e in events]
                    record.acked_ids.extend(ids)
                    record.acked_batches[index] = ids
                    break
                if answer.status != NO_ANSWER and answer.status not in RETRYABLE:
                    record.rejected_events += size
                    break
                if time.monotonic() - first > spec.give_up_s:
                    record.gave_up_events += size
                    break
                await asyncio.sleep(_delay(tries, answer))

    try:
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            await asyncio.gather(*(client(session) for _ in range(spec.concurrency)))
    finally:
        record.finished = time.monotonic()
    return record


async def wait_in_flight(record: LoadRecord, requests: int, timeout: float = 10.0) -> bool:
    """Wait until at least `requests` requests are in flight (False on timeout), so a fault
    injected next hits requests in progress."""
    deadline = time.monotonic() + timeout
    while record.in_flight < requests:
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.001)
    return True


def _delay(tries: int, answer: Answer) -> float:
    # Retry-After (sent with 503) plus a little jitter; otherwise capped exponential back-off
    # with full jitter, as ops_client's RetryPolicy does.
    if answer.retry_after:
        try:
            return min(float(answer.retry_after), 30.0) + random.uniform(0, 0.2)
        except ValueError:
            pass
    return random.uniform(0.05, min(2.0, 0.2 * 2 ** (tries - 1)))
