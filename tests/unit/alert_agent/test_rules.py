"""Unit tests for alert_agent.rules: the rules file is checked at start-up, errors name the rule
and the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from support.tables import cases

from alert_agent.rules import RuleFileError, load_rules, parse_rules

VALID = {
    "name": "high-failure",
    "metric": "failure_rate",
    "op": ">",
    "threshold": 0.1,
    "message": "{app} failing at {value:.0%}",
}


def with_rule(**changes: Any) -> dict[str, Any]:
    """A rules document of one rule: VALID with `changes` (None removes a field)."""
    rule = {**VALID, **changes}
    return {"rules": [{k: v for k, v in rule.items() if v is not None}]}


def test_the_packaged_default_rules_load() -> None:
    rules = load_rules()
    assert {r.name for r in rules} == {"high-failure-rate", "slow-p95"}
    assert all(r.min_total > 0 and r.for_windows >= 2 for r in rules)


def test_defaults_of_optional_fields() -> None:
    (rule,) = parse_rules(with_rule())
    assert (rule.min_total, rule.for_windows, rule.severity) == (1, 1, "warning")
    assert rule.match.matches("any", "thing", "at-all")


@pytest.mark.parametrize(
    ("changes", "expected"),
    cases(
        [
            (
                "unknown metric",
                {"metric": "p99"},
                "rule 'high-failure' (#1): metric: Input should be",
            ),
            ("bad comparison", {"op": "=="}, "rule 'high-failure' (#1): op: Input should be"),
            ("threshold text", {"threshold": "high"}, "threshold: Input should be a valid number"),
            (
                "threshold NaN",
                {"threshold": float("nan")},
                "threshold: Input should be a finite number",
            ),
            (
                "missing threshold",
                {"threshold": None},
                "rule 'high-failure' (#1): threshold: Field required",
            ),
            ("for zero", {"for": 0}, "for: Input should be greater than or equal to 1"),
            (
                "negative min_total",
                {"min_total": -1},
                "min_total: Input should be greater than or equal to 0",
            ),
            (
                "bad severity",
                {"severity": "page"},
                "severity: Input should be 'info', 'warning' or 'critical'",
            ),
            (
                "unknown field",
                {"treshold": 1},
                "rule 'high-failure' (#1): treshold: Extra inputs are not permitted",
            ),
            (
                "unknown placeholder",
                {"message": "{apps} down"},
                "message: Value error, unknown placeholder {apps}",
            ),
            (
                "bad format spec",
                {"message": "{app:.2f}"},
                "message: Value error, template does not render",
            ),
            (
                "bad resolved message",
                {"resolved_message": "{x}"},
                "resolved_message: Value error, unknown placeholder {x}",
            ),
            (
                "selector typo",
                {"match": {"ap": "x"}},
                "rule 'high-failure' (#1): match.ap: Extra inputs",
            ),
            ("no name", {"name": None}, "rule #1: name: Field required"),
            (
                "bad name",
                {"name": "has space"},
                "rule 'has space' (#1): name: String should match pattern",
            ),
            (
                "zero repeat",
                {"repeat_interval_s": 0},
                "repeat_interval_s: Input should be greater than 0",
            ),
        ]
    ),
)
def test_invalid_rules_are_refused_naming_rule_and_field(changes: dict, expected: str) -> None:
    with pytest.raises(RuleFileError) as refused:
        parse_rules(with_rule(**changes))
    assert expected in str(refused.value)


def test_duplicate_names_are_refused() -> None:
    doc = {"rules": [VALID, VALID]}
    with pytest.raises(RuleFileError, match="rule name 'high-failure' is used twice"):
        parse_rules(doc)


@pytest.mark.parametrize(
    ("document", "expected"),
    cases(
        [
            ("not a mapping", ["a"], "expected a mapping with a 'rules' list"),
            ("no rules key", {"rule": []}, "rules: Field required"),
            ("rules not a list", {"rules": "x"}, "rules: Input should be a valid list"),
        ]
    ),
)
def test_malformed_documents_are_refused(document: object, expected: str) -> None:
    with pytest.raises(RuleFileError, match=expected):
        parse_rules(document)


def test_unreadable_and_invalid_yaml_files_say_which_file(tmp_path: Path) -> None:
    with pytest.raises(RuleFileError, match="cannot read the rules file"):
        load_rules(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("rules: [\n  - name: x\n   bad indent")
    with pytest.raises(RuleFileError, match=r"broken\.yaml: not valid YAML"):
        load_rules(broken)


@pytest.mark.parametrize(
    ("selector", "series", "matches"),
    cases(
        [
            ("all by default", {}, ("a", "prod", "x"), True),
            ("exact env", {"env": "prod"}, ("a", "prod", "x"), True),
            ("exact env other", {"env": "prod"}, ("a", "staging", "x"), False),
            ("glob event", {"event": "checkout-*"}, ("a", "prod", "checkout-pay"), True),
            ("glob event miss", {"event": "checkout-*"}, ("a", "prod", "login"), False),
            ("glob is case-sensitive", {"app": "Shop*"}, ("shop-web", "prod", "x"), False),
            ("character class", {"app": "shop-[ab]"}, ("shop-b", "prod", "x"), True),
            ("every field must match", {"app": "a", "env": "prod"}, ("a", "dev", "x"), False),
        ]
    ),
)
def test_selectors_exact_and_glob(selector: dict, series: tuple, matches: bool) -> None:
    (rule,) = parse_rules(with_rule(match=selector))
    assert rule.match.matches(*series) is matches
