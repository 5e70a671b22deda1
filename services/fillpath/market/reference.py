"""The lit book in plain Python: the reference the numba matching core is tested against.

Written for clarity, not speed: a dict of price level → deque of [owner, quantity] per venue and
side. Same operations and results as `book.py` (without the slots and the cancel heap).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from fillpath.market.layout import BUY


@dataclass(slots=True)
class ReferenceBook:
    """One venue's book; orders are identified by their owner tag."""

    levels: dict[int, deque[list[int]]] = field(default_factory=dict)
    sides: dict[int, int] = field(default_factory=dict)  # level → side resting there

    def add(self, side: int, level: int, qty: int, owner: int) -> None:
        self.levels.setdefault(level, deque()).append([owner, qty])
        self.sides[level] = side

    def remove(self, owner: int) -> None:
        for level, queue in self.levels.items():
            for entry in queue:
                if entry[0] == owner:
                    queue.remove(entry)
                    if not queue:
                        del self.levels[level]
                    return
        raise KeyError(owner)

    def reduce(self, owner: int, by: int) -> None:
        for queue in self.levels.values():
            for entry in queue:
                if entry[0] == owner:
                    entry[1] -= by
                    return
        raise KeyError(owner)

    def best(self, side: int) -> int | None:
        mine = [level for level in self.levels if self.sides[level] == side]
        if not mine:
            return None
        return max(mine) if side == BUY else min(mine)

    def depth(self, side: int, level: int) -> int:
        if self.sides.get(level) != side or level not in self.levels:
            return 0
        return sum(qty for _, qty in self.levels[level])

    def take(self, side: int, limit: int | None, qty: int) -> list[tuple[int, int, int]]:
        """Matches an incoming order; (owner, level, quantity) per match, in match order."""
        matches = []
        opposite = 1 - side
        while qty > 0:
            level = self.best(opposite)
            if level is None:
                break
            if limit is not None and (level > limit if side == BUY else level < limit):
                break
            queue = self.levels[level]
            owner, resting = queue[0]
            q = min(qty, resting)
            matches.append((owner, level, q))
            qty -= q
            if q == resting:
                queue.popleft()
                if not queue:
                    del self.levels[level]
            else:
                queue[0][1] -= q
        return matches
