"""The learned cost model: what each candidate profile is expected to cost an order, and how
uncertain that is, from the features of the order and the market at its arrival.

Fitted on executions of candidate profiles in randomised market-lab scenarios (`fillpath
strategy train`): one sample per (scenario, profile), its cost the implementation shortfall in
bps against the arrival mid (unfilled shares at the window's last mid). Two gradient-boosted
tree ensembles (scikit-learn's HistGradientBoostingRegressor, seeded): the mean cost, on the
features plus the profile one-hot; and the risk — the standard deviation of the cost around that
mean — fitted to the out-of-fold absolute errors of the first (× √(π/2), which turns a mean
absolute deviation into a standard deviation for normal errors). The metrics are out of fold
too, scenarios kept whole (GroupKFold), so a scenario never helps predict itself.

Confidence, in 0..1: the share of the order's features inside the 1–99 % range the model was
trained on (0 when a candidate is a profile it never saw). Below the policy's minConfidence the
rule's own profile stands.

Serving: scikit-learn's predict costs a couple of milliseconds a call in input checks and
thread start-up, whatever the input's size — too slow for a choice on the order path. The
fitted trees are copied once into flat arrays (`Ensemble.of`) and walked by a numba kernel;
`Ensemble` answers what the estimator answers (tests/unit/strategy/test_model.py holds them
equal), in microseconds.
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import numba
import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.model_selection import GroupKFold

from fillpath.strategy.features import FEATURES, Features
from fillpath.strategy.rules import ProfileRef

FOLDS = 5
MAD_TO_SD = math.sqrt(math.pi / 2)


@dataclass(frozen=True, slots=True, kw_only=True)
class Prediction:
    cost_bps: float
    risk_bps: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Ranking:
    """A cost model's predictions for the candidate profiles of one order."""

    version: str
    predictions: Mapping[str, Prediction]
    """Profile name → its prediction."""
    confidence: float
    """0..1: how far the model trusts itself on these features (near its training data)."""


class CostModel(Protocol):
    version: str

    def rank(self, features: Features, candidates: Sequence[ProfileRef]) -> Ranking: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Sample:
    scenario: int
    features: dict[str, float]
    profile: str
    cost_bps: float


@numba.njit(cache=True, nogil=True)
def _walk(
    rows: np.ndarray,
    roots: np.ndarray,
    feature: np.ndarray,
    threshold: np.ndarray,
    nan_left: np.ndarray,
    left: np.ndarray,
    right: np.ndarray,
    leaf: np.ndarray,
    value: np.ndarray,
    baseline: float,
) -> np.ndarray:  # pragma: no cover - compiled
    """The sum over the trees (each from its root) of the leaf each row reaches, plus the
    baseline: HistGradientBoostingRegressor's prediction for numeric features."""
    out = np.full(rows.shape[0], baseline)
    for r in range(rows.shape[0]):
        for root in roots:
            node = root
            while not leaf[node]:
                x = rows[r, feature[node]]
                if np.isnan(x):
                    node = left[node] if nan_left[node] else right[node]
                elif x <= threshold[node]:
                    node = left[node]
                else:
                    node = right[node]
            out[r] += value[node]
    return out


@dataclass(frozen=True, slots=True)
class Ensemble:
    """A fitted HistGradientBoostingRegressor's trees as flat arrays, node ids global."""

    roots: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    nan_left: np.ndarray
    left: np.ndarray
    right: np.ndarray
    leaf: np.ndarray
    value: np.ndarray
    baseline: float

    @classmethod
    def of(cls, fitted: HistGradientBoostingRegressor) -> Ensemble:
        trees = [predictors[0].nodes for predictors in fitted._predictors]
        offsets = np.cumsum([0] + [len(t) for t in trees[:-1]]).astype(np.int64)
        nodes = np.concatenate(trees)
        shift = np.repeat(offsets, [len(t) for t in trees])
        if nodes["is_categorical"].any():
            raise ValueError("categorical splits are not served (the features are numeric)")
        return cls(
            roots=offsets,
            feature=nodes["feature_idx"].astype(np.int64),
            threshold=nodes["num_threshold"].astype(np.float64),
            nan_left=nodes["missing_go_to_left"].astype(np.bool_),
            left=(nodes["left"] + shift).astype(np.int64),
            right=(nodes["right"] + shift).astype(np.int64),
            leaf=nodes["is_leaf"].astype(np.bool_),
            value=nodes["value"].astype(np.float64),
            baseline=float(np.asarray(fitted._baseline_prediction).ravel()[0]),
        )

    def predict(self, rows: np.ndarray) -> np.ndarray:
        return _walk(
            np.ascontiguousarray(rows, dtype=np.float64), self.roots, self.feature,
            self.threshold, self.nan_left, self.left, self.right, self.leaf, self.value,
            self.baseline,
        )  # fmt: skip


def _regressor(seed: int) -> HistGradientBoostingRegressor:
    return HistGradientBoostingRegressor(
        max_iter=300,
        learning_rate=0.05,
        max_leaf_nodes=15,
        min_samples_leaf=10,
        l2_regularization=1.0,
        random_state=seed,
    )


class LearnedModel:
    """A fitted cost model (see the module's notes); `rank` is what the service asks."""

    def __init__(
        self,
        *,
        version: str,
        trained_at: datetime,
        seed: int,
        profiles: tuple[str, ...],
        mean: HistGradientBoostingRegressor,
        risk: HistGradientBoostingRegressor,
        low: np.ndarray,
        high: np.ndarray,
        metrics: dict[str, float],
    ) -> None:
        self.version = version
        self.trained_at = trained_at
        self.seed = seed
        self.features = FEATURES
        self.profiles = profiles
        self._mean = Ensemble.of(mean)
        self._risk = Ensemble.of(risk)
        self._low = low
        self._high = high
        self.metrics = metrics

    def predict(self, features: Features, profiles: Sequence[str]) -> list[Prediction]:
        rows = np.array([_row(features.values, p, self.profiles) for p in profiles], np.float64)
        costs = self._mean.predict(rows)
        risks = np.maximum(self._risk.predict(rows), 0.0)
        return [
            Prediction(cost_bps=float(c), risk_bps=float(r))
            for c, r in zip(costs, risks, strict=True)
        ]

    def confidence(self, features: Features) -> float:
        # In plain Python: for one order's few features numpy's calls cost more than the sums.
        x = features.vector()
        inside = sum(lo <= v <= hi for v, lo, hi in zip(x, self._low, self._high, strict=True))
        return float(inside) / len(x)

    def rank(self, features: Features, candidates: Sequence[ProfileRef]) -> Ranking:
        names = [c.name for c in candidates]
        known = [n for n in names if n in self.profiles]
        predictions = dict(zip(known, self.predict(features, known), strict=True))
        confidence = self.confidence(features) if len(known) == len(names) else 0.0
        return Ranking(version=self.version, predictions=predictions, confidence=confidence)

    def to_bytes(self) -> bytes:
        """The model as stored in the registry (a pickle: read back only from our own
        Postgres, never from outside)."""
        return pickle.dumps(self, protocol=pickle.HIGHEST_PROTOCOL)

    @staticmethod
    def from_bytes(data: bytes) -> LearnedModel:
        model = pickle.loads(data)  # noqa: S301 - our own registry's bytes
        if not isinstance(model, LearnedModel) or model.features != FEATURES:
            raise ValueError("the stored model's feature schema is not this version's")
        return model


def _row(values: dict[str, float], profile: str, profiles: tuple[str, ...]) -> list[float]:
    return [values[name] for name in FEATURES] + [float(profile == p) for p in profiles]


def fit(
    samples: Sequence[Sample], *, seed: int, version: str, trained_at: datetime
) -> LearnedModel:
    """Fits the model on `samples` (reproducibly: the same samples and seed give the same
    model). Raises ValueError with fewer than `FOLDS` scenarios."""
    scenarios = np.array([s.scenario for s in samples])
    if len(set(scenarios.tolist())) < FOLDS:
        raise ValueError(f"need at least {FOLDS} scenarios to fit, got {len(set(scenarios))}")
    profiles = tuple(sorted({s.profile for s in samples}))
    x = np.array([_row(s.features, s.profile, profiles) for s in samples])
    y = np.array([s.cost_bps for s in samples])
    folds = list(GroupKFold(n_splits=FOLDS).split(x, y, scenarios))
    predicted = np.empty_like(y)
    for train, test in folds:
        predicted[test] = _regressor(seed).fit(x[train], y[train]).predict(x[test])
    errors = np.abs(y - predicted) * MAD_TO_SD
    risk_predicted = np.empty_like(y)
    for train, test in folds:
        risk_predicted[test] = _regressor(seed).fit(x[train], errors[train]).predict(x[test])
    mean = _regressor(seed).fit(x, y)
    risk = _regressor(seed).fit(x, errors)
    vectors = x[:, : len(FEATURES)]
    metrics = {
        "samples": float(len(y)),
        "scenarios": float(len(set(scenarios.tolist()))),
        "oof_mae_bps": float(np.mean(np.abs(y - predicted))),
        "oof_r2": float(1 - np.sum((y - predicted) ** 2) / np.sum((y - y.mean()) ** 2)),
        "oof_risk_mae_bps": float(np.mean(np.abs(errors - risk_predicted))),
        **_choice_metrics(samples, predicted),
    }
    return LearnedModel(
        version=version, trained_at=trained_at, seed=seed, profiles=profiles, mean=mean,
        risk=risk, low=np.quantile(vectors, 0.01, axis=0), high=np.quantile(vectors, 0.99, axis=0),
        metrics=metrics,
    )  # fmt: skip


def _choice_metrics(samples: Sequence[Sample], predicted: np.ndarray) -> dict[str, float]:
    """Out of fold, per scenario: how often the cheapest predicted profile was the cheapest
    executed, and the mean cost of taking it against that of the best single profile."""
    by_scenario: dict[int, list[tuple[str, float, float]]] = {}
    for sample, guess in zip(samples, predicted, strict=True):
        by_scenario.setdefault(sample.scenario, []).append((sample.profile, sample.cost_bps, guess))
    complete = [runs for runs in by_scenario.values() if len(runs) > 1]
    if not complete:
        return {}
    hits = [
        min(runs, key=lambda r: r[2])[0] == min(runs, key=lambda r: r[1])[0] for runs in complete
    ]
    chosen = [min(runs, key=lambda r: r[2])[1] for runs in complete]
    per_profile: dict[str, list[float]] = {}
    for runs in complete:
        for profile, cost, _ in runs:
            per_profile.setdefault(profile, []).append(cost)
    best_fixed = min(float(np.mean(costs)) for costs in per_profile.values())
    return {
        "oof_best_pick_rate": float(np.mean(hits)),
        "oof_chosen_cost_bps": float(np.mean(chosen)),
        "oof_best_fixed_cost_bps": best_fixed,
    }
