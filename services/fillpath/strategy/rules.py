"""A desk's execution policy: the ordered rules of its `ExecutionStrategy` resources.

A rule holds when every condition it names holds for the order (a condition left out holds
always); the first rule that holds names the AlgoProfile, the overrides within its bounds, the
venues and, when the cost model may choose, the other profiles it may choose among. An order no
rule takes gets the strategy's `defaultProfile`. Several ExecutionStrategy resources are tried
in name order, as one list.

`check` is what loading reports besides the CRD's own validation: a rule that can never match
(a pattern no instrument has, a class nobody trades, a window outside the session) or that an
earlier rule takes every order of, and overrides outside the named profile's bounds. The
former two are warnings — the strategy still runs — the last is refused.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fillpath.core.enums import AlgorithmKind, Side, Urgency
from fillpath.core.errors import FieldViolation, InvalidArgument
from fillpath.core.profiles import AlgoProfile, resolve
from fillpath.infra.resources import Resource

SESSION_MINUTES = 390.0
"""A US equity session, for the windows a rule can never see."""


@dataclass(frozen=True, slots=True)
class Range:
    """min ≤ value < max; None is open on that side."""

    low: float | None = None
    high: float | None = None

    @classmethod
    def of(cls, spec: Mapping[str, Any] | None) -> Range:
        spec = spec or {}
        return cls(spec.get("min"), spec.get("max"))

    def holds(self, value: float) -> bool:
        if self.low is not None and not value >= self.low:
            return False
        return self.high is None or value < self.high

    def covers(self, other: Range) -> bool:
        """Every value `other` holds for, this one holds for."""
        low = -math.inf if self.low is None else self.low
        high = math.inf if self.high is None else self.high
        other_low = -math.inf if other.low is None else other.low
        other_high = math.inf if other.high is None else other.high
        return low <= other_low and other_high <= high

    @property
    def empty(self) -> bool:
        return self.low is not None and self.high is not None and self.low >= self.high

    def __str__(self) -> str:
        if self.low is None and self.high is None:
            return "any"
        low = "" if self.low is None else f"{self.low:g} ≤ "
        high = "" if self.high is None else f" < {self.high:g}"
        return f"{low}x{high}"


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderFacts:
    """What the rules look at: the order, its instrument and the market at arrival."""

    symbol: str
    instrument_class: str
    side: Side
    urgency: Urgency | None
    account: str
    size_pct_adv: float
    notional: float
    spread_bps: float
    volatility_pct: float
    minutes_to_close: float
    minutes_since_open: float


RANGES = {
    "sizePctAdv": "size_pct_adv",
    "notional": "notional",
    "spreadBps": "spread_bps",
    "volatilityPct": "volatility_pct",
    "minutesToClose": "minutes_to_close",
    "minutesSinceOpen": "minutes_since_open",
}
"""The range conditions: CRD field → `OrderFacts` attribute."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Conditions:
    instrument_classes: frozenset[str] = frozenset()
    symbol_pattern: re.Pattern[str] | None = None
    side: Side | None = None
    urgencies: frozenset[Urgency] = frozenset()
    accounts: frozenset[str] = frozenset()
    ranges: Mapping[str, Range] = field(default_factory=dict)
    """`OrderFacts` attribute → its range (only those named)."""

    def holds(self, order: OrderFacts) -> bool:
        if self.instrument_classes and order.instrument_class not in self.instrument_classes:
            return False
        if self.symbol_pattern is not None and not self.symbol_pattern.fullmatch(order.symbol):
            return False
        if self.side is not None and order.side is not self.side:
            return False
        if self.urgencies and order.urgency not in self.urgencies:
            return False
        if self.accounts and order.account not in self.accounts:
            return False
        return all(r.holds(getattr(order, name)) for name, r in self.ranges.items())

    def covers(self, other: Conditions, symbols: Collection[str]) -> bool:
        """Every order `other` holds for, this holds for too (`symbols`: the instruments known,
        for comparing patterns)."""
        if not _set_covers(self.instrument_classes, other.instrument_classes):
            return False
        if not _set_covers(self.urgencies, other.urgencies):
            return False
        if not _set_covers(self.accounts, other.accounts):
            return False
        if self.side is not None and self.side is not other.side:
            return False
        if self.symbol_pattern is not None:
            if other.symbol_pattern is None:
                return False
            if self.symbol_pattern.pattern != other.symbol_pattern.pattern:
                theirs = {s for s in symbols if other.symbol_pattern.fullmatch(s)}
                if not theirs or not all(self.symbol_pattern.fullmatch(s) for s in theirs):
                    return False
        return all(
            name in other.ranges and mine.covers(other.ranges[name])
            for name, mine in self.ranges.items()
        )

    def describe(self) -> str:
        parts = []
        if self.instrument_classes:
            parts.append(f"class in {sorted(self.instrument_classes)}")
        if self.symbol_pattern is not None:
            parts.append(f"symbol ~ {self.symbol_pattern.pattern}")
        if self.side is not None:
            parts.append(self.side.name)
        if self.urgencies:
            parts.append(f"urgency in {sorted(u.name for u in self.urgencies)}")
        if self.accounts:
            parts.append(f"account in {sorted(self.accounts)}")
        parts.extend(f"{name}: {r}" for name, r in self.ranges.items())
        return ", ".join(parts) or "every order"


def _set_covers(mine: frozenset[Any], theirs: frozenset[Any]) -> bool:
    return not mine or (bool(theirs) and theirs <= mine)


@dataclass(frozen=True, slots=True, kw_only=True)
class ProfileRef:
    name: str
    algorithm: AlgorithmKind


@dataclass(frozen=True, slots=True, kw_only=True)
class Rule:
    strategy: str
    name: str
    profile: ProfileRef
    candidates: tuple[ProfileRef, ...] = ()
    when: Conditions = Conditions()
    urgency: Urgency | None = None
    params: tuple[tuple[str, float], ...] = ()
    """Overrides as the algorithm engine takes them (`ExecutionInstructions.params`)."""
    prefer: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    allow_dark: bool = True

    @property
    def choices(self) -> tuple[ProfileRef, ...]:
        """The rule's profile, then the candidates the model may pick instead."""
        return (self.profile, *(c for c in self.candidates if c != self.profile))


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelSettings:
    enabled: bool = False
    risk_aversion: float = 1.0
    min_confidence: float = 0.6


@dataclass(frozen=True, slots=True, kw_only=True)
class Policy:
    """Every ExecutionStrategy's rules, in the order they are tried."""

    rules: tuple[Rule, ...]
    default: Rule | None
    """What an order no rule takes gets (the first strategy's defaultProfile)."""
    model: ModelSettings

    def match(self, order: OrderFacts) -> Rule | None:
        for rule in self.rules:
            if rule.when.holds(order):
                return rule
        return self.default


_OVERRIDE_PARAMS = {
    "participation": "participation",
    "sliceIntervalSeconds": "slice_seconds",
    "riskAversion": "risk_aversion",
}
"""Rule override → the algorithm engine's parameter."""


def policy_of(resources: Sequence[Resource], profiles: Mapping[str, AlgoProfile]) -> Policy:
    """The policy of the ExecutionStrategy `resources` (specs with the CRD's defaults filled).

    Raises:
        InvalidArgument: every rule naming a profile that does not exist or is of another
            algorithm, an override outside its profile's bounds, or a pattern that is not a
            regular expression — named ``<strategy>.rules[i].…``.
    """
    violations: list[FieldViolation] = []
    rules: list[Rule] = []
    default = None
    model = None
    for resource in sorted(resources, key=lambda r: r.name):
        spec = resource.spec
        model = model or ModelSettings(
            enabled=spec["model"]["enabled"],
            risk_aversion=spec["model"]["riskAversion"],
            min_confidence=spec["model"]["minConfidence"],
        )
        for i, raw in enumerate(spec["rules"]):
            path = f"{resource.name}.rules[{i}]"
            rule = _rule(resource.name, raw, path, violations)
            for j, ref in enumerate(rule.choices):
                where = f"{path}.profile" if j == 0 else f"{path}.candidates"
                _check_profile(ref, rule, profiles, where, violations)
            rules.append(rule)
        name = spec.get("defaultProfile")
        if default is None and name:
            found = profiles.get(name)
            if found is None:
                violations.append(
                    FieldViolation(f"{resource.name}.defaultProfile", name, "no such AlgoProfile")
                )
            else:
                ref = ProfileRef(name=name, algorithm=found.algorithm)
                default = Rule(strategy=resource.name, name="", profile=ref)
    if violations:
        raise InvalidArgument(violations)
    return Policy(rules=tuple(rules), default=default, model=model or ModelSettings())


def _rule(
    strategy: str, raw: Mapping[str, Any], path: str, violations: list[FieldViolation]
) -> Rule:
    when = raw.get("when") or {}
    pattern = None
    if "symbolPattern" in when:
        try:
            pattern = re.compile(when["symbolPattern"])
        except re.error as err:
            violations.append(
                FieldViolation(f"{path}.when.symbolPattern", when["symbolPattern"], str(err))
            )
    side = when.get("side", "ANY")
    overrides = raw.get("overrides") or {}
    venues = raw.get("venues") or {}
    return Rule(
        strategy=strategy,
        name=raw["name"],
        profile=_ref(raw["profile"]),
        candidates=tuple(_ref(c) for c in raw.get("candidates", ())),
        when=Conditions(
            instrument_classes=frozenset(when.get("instrumentClasses", ())),
            symbol_pattern=pattern,
            side=None if side == "ANY" else Side[side],
            urgencies=frozenset(Urgency[u] for u in when.get("urgency", ())),
            accounts=frozenset(when.get("accounts", ())),
            ranges={attr: Range.of(when[key]) for key, attr in RANGES.items() if key in when},
        ),
        urgency=Urgency[overrides["urgency"]] if "urgency" in overrides else None,
        params=tuple(
            sorted(
                (param, float(overrides[key]))
                for key, param in _OVERRIDE_PARAMS.items()
                if key in overrides
            )
        ),
        prefer=tuple(venues.get("prefer", ())),
        exclude=tuple(venues.get("exclude", ())),
        allow_dark=bool(venues.get("allowDark", True)),
    )


def _ref(spec: Mapping[str, Any]) -> ProfileRef:
    return ProfileRef(name=spec["name"], algorithm=AlgorithmKind[spec["algorithm"]])


def _check_profile(
    ref: ProfileRef,
    rule: Rule,
    profiles: Mapping[str, AlgoProfile],
    path: str,
    violations: list[FieldViolation],
) -> None:
    profile = profiles.get(ref.name)
    if profile is None:
        known = ", ".join(sorted(profiles))
        violations.append(
            FieldViolation(f"{path}.name", ref.name, f"no such AlgoProfile ({known})")
        )
        return
    if profile.algorithm is not ref.algorithm:
        violations.append(
            FieldViolation(
                f"{path}.algorithm", ref.algorithm.name,
                f"AlgoProfile {ref.name!r} is {profile.algorithm.name}",
            )
        )  # fmt: skip
        return
    try:
        resolve(profile, urgency=rule.urgency, params=dict(rule.params))
    except InvalidArgument as err:
        violations.extend(
            FieldViolation(f"{path[: path.rfind('.')]}.overrides ({v.field})", v.value, v.reason)
            for v in err.violations
        )


# ---- what loading reports ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    rule: str
    """``<strategy>/<rule>``."""
    problem: str


def check(
    policy: Policy,
    *,
    symbols: Collection[str],
    instrument_classes: Collection[str],
    accounts: Collection[str] = (),
) -> list[Finding]:
    """The rules that can never match, and those an earlier rule shadows (takes every order
    of). `symbols`, `instrument_classes` and `accounts` are what is known to trade (accounts:
    empty when not known)."""
    findings = []
    for i, rule in enumerate(policy.rules):
        where = f"{rule.strategy}/{rule.name}"
        never = _never(rule.when, symbols, instrument_classes, accounts)
        if never:
            findings.append(Finding(rule=where, problem=f"can never match: {never}"))
            continue
        for earlier in policy.rules[:i]:
            if earlier.when.covers(rule.when, symbols):
                findings.append(
                    Finding(
                        rule=where,
                        problem=f"shadowed by {earlier.strategy}/{earlier.name} "
                        f"({earlier.when.describe()}), which takes every order it would",
                    )
                )
                break
    return findings


def _never(
    when: Conditions,
    symbols: Collection[str],
    instrument_classes: Collection[str],
    accounts: Collection[str],
) -> str:
    if when.instrument_classes and not when.instrument_classes & set(instrument_classes):
        return f"no instrument is of class {', '.join(sorted(when.instrument_classes))}"
    if when.symbol_pattern is not None and not any(
        when.symbol_pattern.fullmatch(s) for s in symbols
    ):
        return f"no instrument's symbol matches {when.symbol_pattern.pattern!r}"
    if accounts and when.accounts and not when.accounts & set(accounts):
        return f"no such account: {', '.join(sorted(when.accounts))}"
    for name, r in when.ranges.items():
        if r.empty:
            return f"{name} range {r} is empty"
    for name in ("minutes_to_close", "minutes_since_open"):
        window = when.ranges.get(name)
        if window is not None and window.low is not None and window.low >= SESSION_MINUTES:
            return f"{name} ≥ {window.low:g} is outside a {SESSION_MINUTES:g}-minute session"
    return ""
