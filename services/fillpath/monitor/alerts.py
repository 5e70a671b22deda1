"""Alert rules: when an execution or a venue needs a person's attention, and how loudly.

Each rule has a warning and a critical threshold on one figure:

| kind | figure | of |
|---|---|---|
| slippage | arrival slippage, bps (positive = cost) | an active order with fills |
| participation | our share of the market's volume since arrival | an active order |
| no_fill | seconds of market time without a fill | an active, accepted order |
| reject_rate | rejected child orders / child orders | an order |
| venue_down | seconds since the venue last quoted the symbol | a venue, per symbol |
| anomaly | |z| of arrival slippage vs its algorithm and symbol's history | a finished order |

De-duplication: a subject (rule and order, or rule, venue and symbol) raises once per level. A
figure that crosses the warning threshold raises a warning; the same figure crossing the
critical one later escalates — a new, critical alert that names the first. A warning nobody has
acknowledged within `escalate_after_seconds` escalates too. Once the figure is back under the
warning threshold the subject is re-armed, and the next crossing raises again.

Rules come from configuration (defaults/alerts.yaml, or a file `alerts.yaml` in the config
directory); `load_rules` names the field and the value of anything wrong.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml

from fillpath.api.v1 import events_pb2
from fillpath.core.errors import FieldViolation, InvalidArgument
from fillpath.monitor.live import Execution, MarketState

WARNING = events_pb2.ALERT_SEVERITY_WARNING
CRITICAL = events_pb2.ALERT_SEVERITY_CRITICAL

DEFAULT_RULES_FILE = Path(__file__).resolve().parent.parent / "defaults" / "alerts.yaml"


class RuleKind(StrEnum):
    SLIPPAGE = "slippage"
    PARTICIPATION = "participation"
    NO_FILL = "no_fill"
    REJECT_RATE = "reject_rate"
    VENUE_DOWN = "venue_down"
    ANOMALY = "anomaly"


@dataclass(frozen=True, slots=True, kw_only=True)
class Rule:
    name: str
    kind: RuleKind
    warning: float
    critical: float
    minimum: float = 0.0
    """What the subject needs before the rule applies: filled shares (slippage), market
    volume (participation), child orders (reject rate), finished orders of history (anomaly)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertRules:
    rules: tuple[Rule, ...]
    escalate_after_seconds: float = 300.0
    webhook_url: str = ""


_MINIMUM_KEY = {
    RuleKind.SLIPPAGE: "min_filled",
    RuleKind.PARTICIPATION: "min_volume",
    RuleKind.REJECT_RATE: "min_child_orders",
    RuleKind.ANOMALY: "min_history",
}


def rules_from_mapping(data: Any, source: str) -> AlertRules:
    """Rules from their YAML form.

    Raises:
        InvalidArgument: every bad field, with its path in `source`.
    """
    violations: list[FieldViolation] = []
    if not isinstance(data, Mapping):
        raise InvalidArgument.single(source, data, "must be a mapping with a list of rules")
    rules: list[Rule] = []
    raw_rules = data.get("rules", [])
    if not isinstance(raw_rules, list):
        violations.append(FieldViolation(f"{source}: rules", raw_rules, "must be a list"))
        raw_rules = []
    names: set[str] = set()
    for i, raw in enumerate(raw_rules):
        path = f"{source}: rules[{i}]"
        if not isinstance(raw, Mapping):
            violations.append(FieldViolation(path, raw, "must be a mapping"))
            continue
        kind_text = raw.get("kind")
        if kind_text not in set(RuleKind):
            choices = ", ".join(RuleKind)
            violations.append(FieldViolation(f"{path}.kind", kind_text, f"one of {choices}"))
            continue
        kind = RuleKind(kind_text)
        name = str(raw.get("name", kind.value))
        if name in names:
            violations.append(FieldViolation(f"{path}.name", name, "names must be unique"))
        names.add(name)
        numbers: dict[str, float] = {}
        for key in ("warning", "critical", _MINIMUM_KEY.get(kind)):
            if key is None:
                continue
            value = raw.get(key, 0.0 if key == _MINIMUM_KEY.get(kind) else None)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                violations.append(
                    FieldViolation(f"{path}.{key}", value, "a number ≥ 0 is required")
                )
                value = 0.0
            numbers[key] = float(value)
        if numbers.get("critical", 0.0) < numbers.get("warning", 0.0):
            violations.append(
                FieldViolation(
                    f"{path}.critical", raw.get("critical"), "must be at least the warning level"
                )
            )
        rules.append(
            Rule(
                name=name,
                kind=kind,
                warning=numbers.get("warning", 0.0),
                critical=numbers.get("critical", 0.0),
                minimum=numbers.get(_MINIMUM_KEY.get(kind, ""), 0.0),
            )
        )
    escalate = data.get("escalate_after_seconds", 300)
    if isinstance(escalate, bool) or not isinstance(escalate, (int, float)) or escalate <= 0:
        violations.append(
            FieldViolation(f"{source}: escalate_after_seconds", escalate, "a positive number")
        )
        escalate = 300
    webhook = data.get("webhook_url", "") or ""
    if webhook and not str(webhook).startswith(("http://", "https://")):
        violations.append(FieldViolation(f"{source}: webhook_url", webhook, "an http(s) URL"))
    if violations:
        raise InvalidArgument(violations)
    return AlertRules(
        rules=tuple(rules), escalate_after_seconds=float(escalate), webhook_url=str(webhook)
    )


def load_rules(config_dir: Path | None = None) -> AlertRules:
    """The rules in `config_dir`/alerts.yaml, or the defaults."""
    path = DEFAULT_RULES_FILE
    if config_dir is not None and (config_dir / "alerts.yaml").exists():
        path = config_dir / "alerts.yaml"
    return rules_from_mapping(yaml.safe_load(path.read_text()), path.name)


@dataclass(frozen=True, slots=True, kw_only=True)
class Alert:
    alert_id: str
    rule: str
    severity: int
    subject: str
    """What the alert is about, the de-duplication key with the rule: an order or venue/symbol."""
    order_id: str = ""
    symbol: str = ""
    venue: str = ""
    message: str
    value: float
    threshold: float
    raised_at: float
    """Wall time, unix seconds."""
    escalated_from: str = ""
    acknowledged_by: str = ""
    acknowledged_at: float | None = None
    note: str = ""

    @property
    def acknowledged(self) -> bool:
        return self.acknowledged_at is not None

    def to_event(self) -> events_pb2.AlertRaised:
        event = events_pb2.AlertRaised(
            alert_id=self.alert_id,
            rule=self.rule,
            severity=self.severity,  # type: ignore[arg-type]
            order_id=self.order_id,
            symbol=self.symbol,
            venue=self.venue,
            message=self.message,
            value=self.value,
            threshold=self.threshold,
        )
        event.occurred_at.FromNanoseconds(int(self.raised_at * 1e9))
        return event

    def acknowledged_event(self) -> events_pb2.AlertAcknowledged:
        event = events_pb2.AlertAcknowledged(
            alert_id=self.alert_id, acknowledged_by=self.acknowledged_by, note=self.note
        )
        event.occurred_at.FromNanoseconds(int((self.acknowledged_at or 0) * 1e9))
        return event


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    """A rule's figure for a subject, before de-duplication."""

    rule: Rule
    subject: str
    value: float
    order_id: str = ""
    symbol: str = ""
    venue: str = ""
    what: str


def _level(rule: Rule, value: float) -> int:
    if value >= rule.critical:
        return CRITICAL
    if value >= rule.warning:
        return WARNING
    return 0


def _describe(execution: Execution) -> str:
    side = "buy" if execution.side > 0 else "sell"
    return f"{execution.symbol} {side} {execution.quantity:,} ({execution.order_id})"


def history_key(execution: Execution) -> str:
    return f"{execution.algorithm or 'DIRECT'}/{execution.symbol}"


@dataclass(slots=True)
class AlertEngine:
    """Turns findings into alerts, once per subject and level (see the module docstring)."""

    rules: AlertRules
    raised: dict[tuple[str, str], Alert] = field(default_factory=dict)
    """The latest alert of each (rule, subject) still armed."""
    history: dict[str, list[float]] = field(default_factory=dict)
    """Final arrival slippage of finished orders, by algorithm/symbol."""

    def remember(self, alerts: Iterable[Alert]) -> None:
        """Takes back the alerts raised before a restart, so they are not raised again."""
        for alert in sorted(alerts, key=lambda a: a.raised_at):
            self.raised[(alert.rule, alert.subject)] = alert

    def acknowledge(self, alert: Alert) -> None:
        key = (alert.rule, alert.subject)
        if key in self.raised and self.raised[key].alert_id == alert.alert_id:
            self.raised[key] = alert

    def findings(self, execution: Execution, market_time: float) -> list[Finding]:
        """What each order rule makes of `execution` with the market at `market_time`."""
        out: list[Finding] = []
        for rule in self.rules.rules:
            value: float | None = None
            what = ""
            if rule.kind is RuleKind.SLIPPAGE and execution.active:
                slippage = execution.slippage_vs_arrival_bps
                if slippage is not None and execution.filled_quantity >= rule.minimum:
                    value, what = slippage, f"slippage vs arrival {slippage:+.1f} bps"
            elif rule.kind is RuleKind.PARTICIPATION and execution.active:
                share = execution.participation
                if share is not None and execution.market_volume >= rule.minimum:
                    value, what = share, f"participation {share:.1%}"
            elif rule.kind is RuleKind.NO_FILL and execution.active and execution.arrival:
                since = execution.last_fill_time or execution.arrival.time
                if since and market_time:
                    value = market_time - since
                    what = f"no fill for {value:,.0f} s"
            elif rule.kind is RuleKind.REJECT_RATE and execution.child_orders >= max(
                rule.minimum, 1
            ):
                value = execution.rejects / execution.child_orders
                what = f"{execution.rejects} of {execution.child_orders} child orders rejected"
            elif rule.kind is RuleKind.ANOMALY and not execution.active:
                z = self._z_score(execution, rule)
                if z is not None:
                    value, what = abs(z), f"final slippage {z:+.1f} σ from its history"
            if value is not None:
                out.append(
                    Finding(
                        rule=rule,
                        subject=execution.order_id,
                        value=value,
                        order_id=execution.order_id,
                        symbol=execution.symbol,
                        what=f"{_describe(execution)}: {what}",
                    )
                )
        return out

    def _z_score(self, execution: Execution, rule: Rule) -> float | None:
        slippage = execution.slippage_vs_arrival_bps
        history = self.history.get(history_key(execution), [])
        if slippage is None or len(history) < max(rule.minimum, 2):
            return None
        mean = math.fsum(history) / len(history)
        stdev = math.sqrt(math.fsum((x - mean) ** 2 for x in history) / (len(history) - 1))
        return (slippage - mean) / stdev if stdev > 0 else None

    def finished(self, execution: Execution) -> None:
        """Adds a finished order to its algorithm/symbol history (after its anomaly check)."""
        slippage = execution.slippage_vs_arrival_bps
        if slippage is not None:
            self.history.setdefault(history_key(execution), []).append(slippage)

    def venue_findings(self, market: MarketState) -> list[Finding]:
        out: list[Finding] = []
        for rule in self.rules.rules:
            if rule.kind is not RuleKind.VENUE_DOWN:
                continue
            for venue, quoted_at in sorted(market.venue_quoted_at.items()):
                silent = market.time - quoted_at
                out.append(
                    Finding(
                        rule=rule,
                        subject=f"{venue}/{market.symbol}",
                        value=silent,
                        symbol=market.symbol,
                        venue=venue,
                        what=f"{venue} has not quoted {market.symbol} for {silent:,.0f} s",
                    )
                )
        return out

    def alerts(self, findings: Sequence[Finding], now: float) -> list[Alert]:
        """The alerts `findings` raise at wall time `now`: new, escalated or overdue."""
        out: list[Alert] = []
        for finding in findings:
            rule = finding.rule
            key = (rule.name, finding.subject)
            level = _level(rule, finding.value)
            previous = self.raised.get(key)
            if level == 0:
                self.raised.pop(key, None)  # back to normal: re-armed
                continue
            overdue = (
                previous is not None
                and previous.severity == WARNING
                and not previous.acknowledged
                and now - previous.raised_at >= self.rules.escalate_after_seconds
            )
            if previous is not None and previous.severity >= level and not overdue:
                continue
            severity = CRITICAL if overdue else level
            threshold = rule.critical if severity == CRITICAL else rule.warning
            alert = Alert(
                alert_id=uuid.uuid4().hex,
                rule=rule.name,
                severity=severity,
                subject=finding.subject,
                order_id=finding.order_id,
                symbol=finding.symbol,
                venue=finding.venue,
                message=finding.what
                + (
                    f" (unacknowledged for {self.rules.escalate_after_seconds:,.0f} s)"
                    if overdue and level == WARNING
                    else ""
                ),
                value=finding.value,
                threshold=threshold,
                raised_at=now,
                escalated_from=previous.alert_id if previous is not None else "",
            )
            self.raised[key] = alert
            out.append(alert)
        return out
