"""`fillpath bench lab`: how fast the market lab simulates a trading day.

One full simulated session of one instrument on every configured venue (by default four lit
exchanges and two dark pools), driven as `fillpath lab` drives it — in steps of simulated time,
every record converted and delivered after its latency. Figures: book events (background limit
orders, market orders and cancellations), events per second, the wall time of the day and how
many times faster than real time that is.

The baseline, measured in the same run: the matching core on its own, numba kernels against the
plain-Python reference book (reference.py), on the same random stream of adds, cancels and
takes — the speed-up that putting the matching core in numba buys.
"""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from fillpath.infra.reference_data import load_reference_data
from fillpath.market import book
from fillpath.market import engine as eng
from fillpath.market.config import LabConfig, lab_parameters
from fillpath.market.lab import lab_for
from fillpath.market.layout import BUY, NO_LEVEL, OUT_QUOTE, OUT_TRADE, SELL
from fillpath.market.reference import ReferenceBook

_CORE_OPS = 200_000
_LEVELS = 200


def run_lab_bench(
    console: Console, *, symbol: str, seed: int, step: float, as_json: bool
) -> dict[str, Any]:
    reference = load_reference_data()
    config = LabConfig(seed=seed)
    params = lab_parameters()
    with console.status("compiling the lab's kernels (cached after the first run)…"):
        started = time.perf_counter()
        lab_for(config, reference.instruments, params, [symbol]).advance(1.0)
        warmup = time.perf_counter() - started
    lab = lab_for(config, reference.instruments, params, [symbol])
    day = config.session_seconds
    trades = quotes = 0
    with Progress(
        TextColumn("simulating {task.fields[symbol]}"),
        BarColumn(),
        TextColumn("{task.completed:,.0f}/{task.total:,.0f} simulated s"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=as_json,
    ) as progress:
        task = progress.add_task("day", total=day, symbol=symbol)
        started = time.perf_counter()
        t = 0.0
        while t < day:
            t = min(day, t + step)
            for md in lab.advance(t).market_data:
                kinds = md.records["kind"]
                trades += int(np.count_nonzero(kinds == OUT_TRADE))
                quotes += int(np.count_nonzero(kinds == OUT_QUOTE))
            if int(t) % 600 == 0:
                progress.update(task, completed=t)
        wall = time.perf_counter() - started
    ctr = lab.engine(symbol).ctr
    events = int(ctr[eng.C_LIMITS] + ctr[eng.C_MARKETS] + ctr[eng.C_CANCELS])
    results: dict[str, Any] = {
        "day": {
            "symbol": symbol,
            "venues": {
                "lit": [v.name for v in config.lit],
                "dark": [v.name for v in config.dark],
            },
            "book_events": events,
            "limit_orders": int(ctr[eng.C_LIMITS]),
            "market_orders": int(ctr[eng.C_MARKETS]),
            "cancels": int(ctr[eng.C_CANCELS]),
            "trades": trades,
            "quotes": quotes,
            "volume": int(ctr[eng.C_VOLUME]),
            "adv": reference.instruments[symbol].adv,
            "wall_s": wall,
            "events_per_s": events / wall,
            "times_real_time": day / wall,
            "compile_or_load_s": warmup,
        },
        "matching_core": _core(),
        "setup": {"seed": seed, "step_s": step, "session_s": day},
    }
    core = results["matching_core"]
    results["ratios"] = {"numba_vs_python": core["numba_ops_per_s"] / core["python_ops_per_s"]}
    if as_json:
        print(json.dumps(results, indent=2))
    else:
        _print(console, results)
    return results


def _operations(n: int, seed: int = 1) -> np.ndarray:
    """A random stream like the lab's: mostly adds near the touch and cancels, a few takes."""
    rng = np.random.default_rng(seed)
    ops = np.zeros((n, 4), dtype=np.int64)  # kind (0 add, 1 cancel, 2 take), side, level, qty
    ops[:, 0] = rng.choice(3, size=n, p=[0.5, 0.46, 0.04])
    ops[:, 1] = rng.integers(0, 2, size=n)
    distance = rng.geometric(0.3, size=n)
    mid = _LEVELS // 2
    ops[:, 2] = np.where(ops[:, 1] == BUY, mid - distance, mid + distance)
    ops[:, 3] = 100 * rng.integers(1, 6, size=n)
    return ops


def _core() -> dict[str, float]:
    ops = _operations(_CORE_OPS)
    picks = np.random.default_rng(2).integers(0, 1 << 30, size=len(ops))
    _drive(_NumbaBook(), ops[:1000], picks[:1000])  # compile or load the kernels
    timings = {}
    for name, target in (("numba", _NumbaBook()), ("python", _PythonBook())):
        started = time.perf_counter()
        _drive(target, ops, picks)
        timings[name] = time.perf_counter() - started
    return {
        "operations": len(ops),
        "numba_ops_per_s": len(ops) / timings["numba"],
        "python_ops_per_s": len(ops) / timings["python"],
    }


class _NumbaBook:
    def __init__(self) -> None:
        self.b = book.new_books(1, _LEVELS, 1 << 18)
        self.slots: dict[int, int] = {}
        self.match = [np.zeros(4096, dtype=np.int64) for _ in range(3)]

    def add(self, side: int, level: int, qty: int, owner: int) -> None:
        self.slots[owner] = book.add(self.b, 0, side, level, qty, owner, np.inf)

    def remove(self, owner: int) -> None:
        book.remove(self.b, self.slots.pop(owner))

    def take(self, side: int, qty: int) -> list[tuple[int, int, int]]:
        mo, ml, mq = self.match
        n = book.take(self.b, 0, side, NO_LEVEL, qty, mo, ml, mq)
        return list(zip(mo[:n].tolist(), ml[:n].tolist(), mq[:n].tolist(), strict=True))


class _PythonBook:
    def __init__(self) -> None:
        self.ref = ReferenceBook()

    def add(self, side: int, level: int, qty: int, owner: int) -> None:
        self.ref.add(side, level, qty, owner)

    def remove(self, owner: int) -> None:
        self.ref.remove(owner)

    def take(self, side: int, qty: int) -> list[tuple[int, int, int]]:
        return self.ref.take(side, None, qty)


def _drive(target: _NumbaBook | _PythonBook, ops: np.ndarray, picks: np.ndarray) -> None:
    """The same operations on either book; the bookkeeping here is common to both."""
    remaining: dict[int, int] = {}
    live: list[int] = []
    for owner, ((kind, side, level, qty), pick) in enumerate(
        zip(ops.tolist(), picks.tolist(), strict=True)
    ):
        if kind == 0:
            target.add(side, level, qty, owner)
            remaining[owner] = qty
            live.append(owner)
        elif kind == 1 and live:
            i = pick % len(live)
            live[i], live[-1] = live[-1], live[i]
            gone = live.pop()
            if gone in remaining:
                del remaining[gone]
                target.remove(gone)
        elif kind == 2:
            for filled, _, q in target.take(side if side in (BUY, SELL) else BUY, qty * 3):
                remaining[filled] -= q
                if not remaining[filled]:
                    del remaining[filled]
                    if isinstance(target, _NumbaBook):
                        target.slots.pop(filled)


def _print(console: Console, figures: dict[str, Any]) -> None:
    day, core = figures["day"], figures["matching_core"]
    table = Table(
        title=f"Market lab: one simulated session of {day['symbol']} on "
        f"{len(day['venues']['lit'])} lit venues and {len(day['venues']['dark'])} dark pools "
        f"(seed {figures['setup']['seed']}, {figures['setup']['step_s']:g} s steps)",
        title_justify="left",
        header_style="bold",
    )
    table.add_column("")
    table.add_column("figure", justify="right")
    table.add_row("book events", f"{day['book_events']:,}")
    mix = f"{day['limit_orders']:,} / {day['market_orders']:,} / {day['cancels']:,}"
    table.add_row("  limit orders / market orders / cancels", mix)
    table.add_row("trades / quote updates", f"{day['trades']:,} / {day['quotes']:,}")
    table.add_row("volume (ADV)", f"{day['volume']:,} ({day['adv']:,})")
    table.add_row("wall time of the day", f"{day['wall_s']:.2f} s")
    table.add_row("book events per second", f"{day['events_per_s']:,.0f}")
    table.add_row("times faster than real time", f"{day['times_real_time']:,.0f}×")
    table.add_row("compile / load kernels (once)", f"{day['compile_or_load_s']:.2f} s")
    table.add_row("", "")
    table.add_row(f"matching core, numba ({core['operations']:,} ops)",
                  f"{core['numba_ops_per_s']:,.0f} ops/s")  # fmt: skip
    table.add_row("matching core, pure-Python reference (baseline)",
                  f"{core['python_ops_per_s']:,.0f} ops/s")  # fmt: skip
    table.add_row("ratio numba / Python", f"{figures['ratios']['numba_vs_python']:.1f}×")
    console.print(table)
