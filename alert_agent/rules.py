"""Alert rules: the YAML file's schema, loaded and checked at start-up.

Errors name the rule and the field, e.g. `rule 'slow-p95' (#2): threshold: Input should be a
valid number`, so a typo in the file stops the agent with a message that says where to look.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

DEFAULT_RULES_FILE = Path(__file__).resolve().parent / "default_rules.yaml"

Metric = Literal["failure_rate", "p95_latency_ms", "avg_latency_ms", "total"]
Comparison = Literal[">", ">=", "<", "<="]
Severity = Literal["info", "warning", "critical"]

_COMPARE: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}

DEFAULT_RESOLVED_MESSAGE = (
    "RESOLVED {rule}: {app}/{env}/{event} {metric} is {value:g} again"
    " (threshold {op} {threshold:g})"
)

#: Every name a message template may use, with a sample value to check templates at load time.
TEMPLATE_SAMPLE: dict[str, Any] = {
    "rule": "rule",
    "severity": "warning",
    "app": "app",
    "env": "env",
    "event": "event",
    "metric": "failure_rate",
    "op": ">",
    "value": 0.5,
    "threshold": 0.1,
    "for": 2,
    "bucket": "2026-01-01T00:00:00+00:00",
    "total": 100,
    "failure_rate": 0.5,
    "p95_latency_ms": 120.0,
    "avg_latency_ms": 80.0,
}


class RuleFileError(ValueError):
    """The rules file cannot be used; the message says which rule and field."""


class Selector(BaseModel):
    """Which series a rule watches: exact names or shell-style globs (`checkout-*`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    app: str = "*"
    env: str = "*"
    event: str = "*"

    def matches(self, app: str, env: str, event: str) -> bool:
        """True when the series (app, env, event) is one this rule watches."""
        return (
            fnmatchcase(app, self.app)
            and fnmatchcase(env, self.env)
            and fnmatchcase(event, self.event)
        )


class Rule(BaseModel):
    """One condition on a window metric, and how it is announced."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    match: Selector = Selector()
    metric: Metric
    op: Comparison
    threshold: float = Field(allow_inf_nan=False)
    min_total: int = Field(1, ge=0)
    for_windows: int = Field(1, ge=1, alias="for")
    severity: Severity = "warning"
    message: str = Field(min_length=1)
    resolved_message: str = DEFAULT_RESOLVED_MESSAGE
    repeat_interval_s: float | None = Field(None, gt=0)

    @field_validator("message", "resolved_message")
    @classmethod
    def _template_renders(cls, template: str) -> str:
        try:
            template.format_map(TEMPLATE_SAMPLE)
        except KeyError as exc:
            names = ", ".join(sorted(TEMPLATE_SAMPLE))
            raise ValueError(
                f"unknown placeholder {{{exc.args[0]}}}; use one of: {names}"
            ) from None
        except (ValueError, IndexError, AttributeError) as exc:
            raise ValueError(f"template does not render: {exc}") from None
        return template

    def breached(self, value: float) -> bool:
        """True when `value` meets the alerting condition."""
        return _COMPARE[self.op](value, self.threshold)

    def render(self, template: str, fields: dict[str, Any]) -> str:
        """Fill a message template; absent metrics render as NaN rather than failing."""
        return template.format_map({k: math.nan if v is None else v for k, v in fields.items()})


class RuleSet(BaseModel):
    """The whole file: a list of uniquely named rules."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rules: list[Rule]

    @field_validator("rules")
    @classmethod
    def _unique_names(cls, rules: list[Rule]) -> list[Rule]:
        seen: set[str] = set()
        for rule in rules:
            if rule.name in seen:
                raise ValueError(f"rule name {rule.name!r} is used twice")
            seen.add(rule.name)
        return rules


def load_rules(path: Path | None = None) -> list[Rule]:
    """Read and validate a rules file (the packaged default when `path` is None)."""
    path = path or DEFAULT_RULES_FILE
    try:
        document = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise RuleFileError(f"{path}: cannot read the rules file: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise RuleFileError(f"{path}: not valid YAML: {exc}") from None
    return parse_rules(document, source=str(path))


def parse_rules(document: object, *, source: str = "rules") -> list[Rule]:
    """Validate an already parsed rules document."""
    if not isinstance(document, dict):
        raise RuleFileError(f"{source}: expected a mapping with a 'rules' list")
    try:
        return RuleSet.model_validate(document).rules
    except ValidationError as exc:
        raise RuleFileError(
            f"{source}: " + "; ".join(_describe(e, document) for e in exc.errors())
        ) from None


def _describe(error: Any, document: dict[str, Any]) -> str:
    loc = list(error["loc"])
    message = error["msg"]
    if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
        index = loc[1]
        raw = document.get("rules") or []
        name = raw[index].get("name") if index < len(raw) and isinstance(raw[index], dict) else None
        where = f"rule {name!r} (#{index + 1})" if name else f"rule #{index + 1}"
        field = ".".join(str(part) for part in loc[2:]) or "(the rule itself)"
        return f"{where}: {field}: {message}"
    return f"{'.'.join(str(part) for part in loc) or 'rules'}: {message}"
