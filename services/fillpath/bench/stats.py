"""Latency samples and the figures reported from them."""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field


@dataclass(slots=True)
class Samples:
    """Latencies in seconds, recorded from any thread."""

    values: list[float] = field(default_factory=list)
    errors: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, seconds: float) -> None:
        with self._lock:
            self.values.append(seconds)

    def fail(self) -> None:
        with self._lock:
            self.errors += 1

    def percentile(self, q: float) -> float:
        """The q-quantile (0 < q ≤ 1), nearest-rank."""
        ordered = sorted(self.values)
        if not ordered:
            return math.nan
        return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]

    def summary_ms(self) -> dict[str, float]:
        count = len(self.values)
        return {
            "count": count,
            "errors": self.errors,
            "mean_ms": 1000 * sum(self.values) / count if count else math.nan,
            "p50_ms": 1000 * self.percentile(0.50),
            "p99_ms": 1000 * self.percentile(0.99),
            "p999_ms": 1000 * self.percentile(0.999),
            "max_ms": 1000 * max(self.values) if count else math.nan,
        }
