"""The lab's random numbers: SplitMix64 streams, one per source of randomness.

numba's `np.random` keeps one hidden global state per thread, which would make two markets in one
process disturb each other's draws. Each source of randomness in the lab (the efficient price,
limit-order arrivals, market-order arrivals, each dark pool) owns a stream instead: a single
uint64 in a state array, advanced by SplitMix64 (Steele, Lea & Flood 2014), which passes BigCrush
and is two multiplies per draw. A stream depends only on the seed and its index, so the price
path does not change when our own orders change what the book does — the property the impact
measurements rely on (a run with and without a meta-order share every exogenous draw).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, uint64

_GOLDEN = uint64(0x9E3779B97F4A7C15)
_MIX1 = uint64(0xBF58476D1CE4E5B9)
_MIX2 = uint64(0x94D049BB133111EB)
_TWO_POW_53 = 1.0 / 9007199254740992.0


@njit(cache=True, nogil=True)
def next_u64(state: np.ndarray, stream: int) -> np.uint64:
    z = state[stream] + _GOLDEN
    state[stream] = z
    z = (z ^ (z >> uint64(30))) * _MIX1
    z = (z ^ (z >> uint64(27))) * _MIX2
    return z ^ (z >> uint64(31))


@njit(cache=True, nogil=True)
def uniform(state: np.ndarray, stream: int) -> float:
    """A float in [0, 1)."""
    return float(next_u64(state, stream) >> uint64(11)) * _TWO_POW_53


@njit(cache=True, nogil=True)
def exponential(state: np.ndarray, stream: int) -> float:
    """Exp(1)."""
    return -math.log(1.0 - uniform(state, stream))


@njit(cache=True, nogil=True)
def normal(state: np.ndarray, stream: int) -> float:
    """N(0, 1), by Box–Muller (one of the pair; simple, and the cost is not what matters here)."""
    u1 = 1.0 - uniform(state, stream)
    u2 = uniform(state, stream)
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


@njit(cache=True, nogil=True)
def geometric(state: np.ndarray, stream: int, mean: float) -> int:
    """A geometric count ≥ 0 with the given mean."""
    if mean <= 0.0:
        return 0
    p = 1.0 / (1.0 + mean)
    return math.floor(math.log(1.0 - uniform(state, stream)) / math.log(1.0 - p))


def seeded_streams(seed: int, count: int) -> np.ndarray:
    """`count` independent stream states for `seed`: SplitMix64 of (seed, stream index)."""
    mask = (1 << 64) - 1
    states = np.empty(count, dtype=np.uint64)
    for i in range(count):
        z = (seed * 0x9E3779B97F4A7C15 + (i + 1) * 0xD1B54A32D192ED03) & mask
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        states[i] = z ^ (z >> 31)
    return states
