"""Order-rate limits shared by every OMS replica, kept in Redis.

GCRA (the generic cell rate algorithm, as in ATM traffic shaping): one key per account holding
the theoretical arrival time of the next order. A limit of N per second admits a burst of N and
then one order every 1/N seconds. Time comes from the Redis server, so replicas agree.
"""

from __future__ import annotations

from typing import Protocol

import redis

from fillpath.core.errors import Unavailable

_GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
if tat - now > tolerance then return 0 end
tat = tat + interval
redis.call('SET', KEYS[1], string.format('%d', tat), 'PX', math.ceil((tat - now) / 1000) + 1)
return 1
"""


class RateLimiter(Protocol):
    def acquire(self, key: str, per_second: int) -> bool:
        """Takes one unit from `key`'s allowance of `per_second`; False if none is left."""
        ...


class RedisRateLimiter:
    def __init__(self, client: redis.Redis, prefix: str = "fillpath:rate:") -> None:
        self._script = client.register_script(_GCRA)
        self._prefix = prefix

    def acquire(self, key: str, per_second: int) -> bool:
        interval = 1_000_000 // per_second
        tolerance = interval * (per_second - 1)
        try:
            return bool(self._script(keys=[self._prefix + key], args=[interval, tolerance]))
        except redis.RedisError as err:
            raise Unavailable("redis", str(err)) from err
