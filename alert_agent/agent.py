"""One evaluation pass: judge every closed window written since the last pass against every
rule watching its series, store the new states and notifications, and say what happened."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from .alert_store import AlertStore, SeriesKey
from .evaluation import AlertState, Notification, judge
from .metrics import AlertMetrics
from .rules import Rule

log = logging.getLogger(__name__)

#: Re-read windows written this long before the last pass began: a window committed by a
#: transaction that started earlier carries an earlier updated_at. Judging is idempotent.
_OVERLAP = timedelta(minutes=2)


@dataclass
class EvaluationResult:
    """What one pass did; `body()` is POST /ops-alert's answer."""

    dry_run: bool
    evaluated: int
    firing: list[dict[str, Any]] = field(default_factory=list)
    resolved: list[dict[str, Any]] = field(default_factory=list)
    notifications: list[Notification] = field(default_factory=list)

    def body(self) -> dict[str, Any]:
        """The seed's contract: dryRun, evaluated, firing (all now), resolved (this pass)."""
        return {
            "dryRun": self.dry_run,
            "evaluated": self.evaluated,
            "firing": self.firing,
            "resolved": self.resolved,
        }


class AlertAgent:
    """Evaluates on demand; passes never overlap."""

    def __init__(
        self,
        rules: Sequence[Rule],
        store: AlertStore,
        metrics: AlertMetrics,
        *,
        dry_run: bool,
        repeat_interval_s: float,
        lookback_s: float,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_notifications: Callable[[], None] = lambda: None,
    ) -> None:
        self.rules = list(rules)
        self.dry_run = dry_run
        self._store = store
        self._metrics = metrics
        self._repeat_interval_s = repeat_interval_s
        self._clock = clock
        self._on_notifications = on_notifications
        self._since = clock() - timedelta(seconds=lookback_s)
        self._lock = asyncio.Lock()

    async def evaluate(self) -> EvaluationResult:
        """Judge what is new, persist it, log the dry-run line; return the outcome."""
        async with self._lock:
            started = self._clock()
            windows = await self._store.closed_windows(self._since - _OVERLAP)
            states = await self._store.states()
            changed: dict[SeriesKey, AlertState] = {}
            notes: list[Notification] = []
            evaluated = 0
            for window in windows:
                for rule in self.rules:
                    if not rule.match.matches(window.app, window.env, window.event):
                        continue
                    key = (rule.name, window.app, window.env, window.event)
                    outcome = judge(
                        rule,
                        window,
                        states.get(key),
                        now=started,
                        repeat_interval_s=self._repeat_interval_s,
                    )
                    if outcome is None:
                        continue
                    evaluated += 1
                    states[key] = changed[key] = outcome.state
                    if outcome.notification is not None:
                        notes.append(outcome.notification)
            await self._store.save(list(changed.values()), notes, armed=not self.dry_run)
            self._since = started
            result = self._result(evaluated, states, notes)
        self._report(result)
        return result

    def _result(
        self, evaluated: int, states: dict[SeriesKey, AlertState], notes: list[Notification]
    ) -> EvaluationResult:
        rules = {rule.name: rule for rule in self.rules}
        firing = [
            {**_describe(s), "severity": rules[s.rule].severity}
            for s in states.values()
            if s.state == "firing" and s.rule in rules
        ]
        resolved = [
            {**_key(n), "value": n.value, "bucket": n.window.bucket.isoformat()}
            for n in notes
            if n.kind == "resolved"
        ]
        return EvaluationResult(self.dry_run, evaluated, firing, resolved, notes)

    def _report(self, result: EvaluationResult) -> None:
        mode = "dry_run" if self.dry_run else "armed"
        self._metrics.evaluations.inc()
        self._metrics.windows_judged.inc(result.evaluated)
        self._metrics.firing.set(len(result.firing))
        for note in result.notifications:
            self._metrics.notifications.labels(note.kind, mode).inc()
            if self.dry_run:
                log.info("[ops-alert] dryRun would send (%s): %s", note.kind, note.message)
        summary = (
            f"evaluated={result.evaluated} firing={len(result.firing)}"
            f" resolved={len(result.resolved)} notifications={len(result.notifications)}"
        )
        if self.dry_run:
            log.info("[ops-alert] dryRun OK %s", summary)
        else:
            log.info("[ops-alert] armed OK %s", summary)
            if result.notifications:
                self._on_notifications()


def _key(note: Notification) -> dict[str, Any]:
    return {
        "rule": note.rule.name,
        "severity": note.rule.severity,
        "app": note.window.app,
        "env": note.window.env,
        "event": note.window.event,
    }


def _describe(state: AlertState) -> dict[str, Any]:
    return {
        "rule": state.rule,
        "app": state.app,
        "env": state.env,
        "event": state.event,
        "value": state.last_value,
        "bucket": state.last_bucket.isoformat(),
        "since": state.since.isoformat(),
    }
