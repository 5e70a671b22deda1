"""Order-rate limits in Redis (GCRA): a burst of N, then N per second, per key."""

from __future__ import annotations

import time

import pytest
import redis

from fillpath.core.errors import Unavailable
from fillpath.infra.redis.rate_limiter import RedisRateLimiter


def test_a_burst_of_the_limit_passes_and_the_next_is_refused(redis_url: str) -> None:
    limiter = RedisRateLimiter(redis.Redis.from_url(redis_url))
    assert [limiter.acquire("acct", 5) for _ in range(6)] == [True] * 5 + [False]


def test_allowance_comes_back_at_the_configured_rate(redis_url: str) -> None:
    limiter = RedisRateLimiter(redis.Redis.from_url(redis_url))
    while limiter.acquire("acct", 20):
        pass
    drained = time.monotonic()
    time.sleep(0.12)  # 20/s: one every 50 ms
    granted = 0
    while limiter.acquire("acct", 20):
        granted += 1
    elapsed = time.monotonic() - drained
    assert 2 <= granted <= int(elapsed / 0.05) + 1


def test_keys_are_limited_independently(redis_url: str) -> None:
    limiter = RedisRateLimiter(redis.Redis.from_url(redis_url))
    assert all(limiter.acquire("a", 3) for _ in range(3))
    assert limiter.acquire("b", 3)
    assert not limiter.acquire("a", 3)


def test_redis_down_is_unavailable_not_a_silent_pass() -> None:
    limiter = RedisRateLimiter(redis.Redis.from_url("unix:///nonexistent/redis.sock"))
    with pytest.raises(Unavailable, match="redis"):
        limiter.acquire("a", 3)
