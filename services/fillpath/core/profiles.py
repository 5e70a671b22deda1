"""Algorithm parameters: the `AlgoProfile` resources an order names, and the parameters one
execution runs with once the order's overrides are checked against its profile's bounds.

A profile (crds/algoprofiles.fillpath.io.yaml) fixes the algorithm and gives, for each
parameter it governs, the bounds an order may move it within and the default it gets when it
does not. An order names a profile, or only an algorithm (it then gets the first profile of
that algorithm), and may override inside the bounds through `ExecutionInstructions`:
`urgency`, `max_participation_bps` and the `params` map (keys in `OVERRIDES`). Anything
outside the bounds, or a key the algorithm does not know, is refused with the field named;
nothing is clipped silently.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from fillpath.core.enums import AlgorithmKind, Urgency
from fillpath.core.errors import FieldViolation, InvalidArgument
from fillpath.core.executions import AlgoParams

OVERRIDES = (
    "participation",
    "slice_seconds",
    "min_slice_quantity",
    "randomize",
    "risk_aversion",
    "display_quantity",
    "price_limit_bps",
)
"""The keys of `ExecutionInstructions.params` an order may set."""

DEFAULT_PARTICIPATION = (0.0, 1.0, 0.10)
"""(min, max, target) for a profile that names no participation bounds: no cap."""
DEFAULT_RISK_AVERSION = (0.0, 1e-3, 1e-5)
"""(min, max, default) λ, per dollar, for a profile that names none (days as the time unit)."""


@dataclass(frozen=True, slots=True)
class Bounds:
    low: float
    high: float
    default: float

    def check(self, field: str, value: float) -> FieldViolation | None:
        if not math.isfinite(value) or not self.low <= value <= self.high:
            return FieldViolation(field, value, f"must lie within [{self.low:g}, {self.high:g}]")
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class AlgoProfile:
    """One AlgoProfile resource, read."""

    name: str
    algorithm: AlgorithmKind
    participation: Bounds
    """Share of market volume: min, max (a cap no window may exceed), target (POV's rate)."""
    slice_seconds: Bounds
    urgency: Urgency
    allowed_urgencies: frozenset[Urgency]
    risk_aversion: Bounds
    display: Bounds | None
    display_randomize: float
    min_slice: int
    randomize: float
    price_limit_bps: float
    """0: no band around the arrival price."""

    @classmethod
    def from_spec(cls, name: str, spec: Mapping[str, Any]) -> AlgoProfile:
        """From a spec with the CRD's defaults filled in (fillpath.infra.resources)."""
        participation = spec.get("participation")
        low, high, target = DEFAULT_PARTICIPATION
        if participation is not None:
            low, high = participation["min"], participation["max"]
            target = participation.get("target", min(max(target, low), high))
        interval = spec["sliceInterval"]
        risk = spec.get("riskAversion") or {}
        r_low, r_high, r_default = DEFAULT_RISK_AVERSION
        r_low, r_high = risk.get("min", r_low), risk.get("max", r_high)
        r_default = risk.get("default", min(max(r_default, r_low), r_high))
        display = spec.get("displayQuantity")
        return cls(
            name=name,
            algorithm=AlgorithmKind[spec["algorithm"]],
            participation=Bounds(low, high, target),
            slice_seconds=Bounds(
                interval["minSeconds"], interval["maxSeconds"], interval["defaultSeconds"]
            ),
            urgency=Urgency[spec["urgency"]["default"]],
            allowed_urgencies=frozenset(Urgency[u] for u in spec["urgency"]["allowed"]),
            risk_aversion=Bounds(r_low, r_high, r_default),
            display=None
            if display is None
            else Bounds(display["min"], display["max"], (display["min"] + display["max"]) / 2),
            display_randomize=display.get("randomize", 0.0) if display else 0.0,
            min_slice=int(spec["minSliceQuantity"]),
            randomize=float(spec.get("randomize", 0.0)),
            price_limit_bps=float((spec.get("priceLimit") or {}).get("maxDistanceBps", 0)),
        )


def resolve(
    profile: AlgoProfile,
    *,
    algorithm: AlgorithmKind | None = None,
    urgency: Urgency | None = None,
    max_participation_bps: int = 0,
    params: Mapping[str, float] | None = None,
) -> AlgoParams:
    """The parameters an order gets from `profile` and its overrides.

    Raises:
        InvalidArgument: every override outside the profile's bounds, named
            (``params.risk_aversion``, ``max_participation_bps``, ``urgency``…).
    """
    params = dict(params or {})
    violations: list[FieldViolation] = []
    if algorithm is not None and algorithm is not profile.algorithm:
        violations.append(
            FieldViolation(
                "algorithm", algorithm.name,
                f"profile {profile.name!r} is {profile.algorithm.name}",
            )
        )  # fmt: skip
    if urgency is not None and urgency not in profile.allowed_urgencies:
        allowed = ", ".join(u.name for u in sorted(profile.allowed_urgencies))
        violations.append(FieldViolation("urgency", urgency.name, f"one of {allowed}"))
    violations.extend(
        FieldViolation(f"params.{key}", value, f"one of {', '.join(OVERRIDES)}")
        for key, value in params.items()
        if key not in OVERRIDES
    )

    def pick(key: str, bounds: Bounds) -> float:
        if key not in params:
            return bounds.default
        found = bounds.check(f"params.{key}", params[key])
        if found is not None:
            violations.append(found)
        return float(params[key])

    participation = profile.participation
    cap = participation.high
    if max_participation_bps:
        cap = max_participation_bps / 10_000
        if not participation.low <= cap <= participation.high:
            violations.append(
                FieldViolation(
                    "max_participation_bps", max_participation_bps,
                    f"must lie within [{participation.low * 1e4:g}, {participation.high * 1e4:g}]"
                    f" (profile {profile.name!r})",
                )
            )  # fmt: skip
    target = pick("participation", replace(participation, high=cap))
    display = profile.display or Bounds(0, 0, 0)
    if "display_quantity" in params and profile.display is None:
        violations.append(
            FieldViolation("params.display_quantity", params["display_quantity"],
                           f"profile {profile.name!r} shows no display quantity")
        )  # fmt: skip
    resolved = AlgoParams(
        algorithm=profile.algorithm,
        profile=profile.name,
        urgency=urgency or profile.urgency,
        participation=target,
        min_participation=participation.low,
        max_participation=cap,
        slice_seconds=pick("slice_seconds", profile.slice_seconds),
        min_slice=int(pick("min_slice_quantity", Bounds(1, math.inf, profile.min_slice))),
        randomize=pick("randomize", Bounds(0.0, 1.0, profile.randomize)),
        risk_aversion=pick("risk_aversion", profile.risk_aversion),
        display_quantity=int(pick("display_quantity", display)),
        display_randomize=profile.display_randomize,
        price_limit_bps=pick("price_limit_bps", Bounds(0.0, 10_000.0, profile.price_limit_bps)),
    )
    if violations:
        raise InvalidArgument(violations)
    return resolved


def profile_for(
    profiles: Sequence[AlgoProfile], name: str, algorithm: AlgorithmKind | None
) -> AlgoProfile:
    """The profile an order names, or else the first profile of its algorithm.

    Raises:
        InvalidArgument: no such profile, or neither a profile nor an algorithm.
    """
    if name:
        for profile in profiles:
            if profile.name == name:
                return profile
        known = ", ".join(p.name for p in profiles)
        raise InvalidArgument.single("algo_profile", name, f"no such AlgoProfile ({known})")
    if algorithm is None:
        raise InvalidArgument.single(
            "algorithm", "UNSPECIFIED", "name an algorithm or an algo_profile"
        )
    for profile in profiles:
        if profile.algorithm is algorithm:
            return profile
    raise InvalidArgument.single("algorithm", algorithm.name, "no AlgoProfile of this algorithm")
