"""LOBSTER replay rebuilds the recorded book exactly: after every message, the top levels equal
the orderbook file's row. The files are written here by a small independent model of a book, with
orders resting before the file starts (ids the messages never introduced), as in real files."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from fillpath.cli import main
from fillpath.core.errors import InvalidArgument
from fillpath.market.layout import OUT_QUOTE, OUT_TRADE
from fillpath.market.lobster import EMPTY_PRICE, LobsterReplay, read_lobster

DEPTH = 5
TICK = 100  # $0.01 in LOBSTER price units (dollars × 10,000)
MID = 1_000_000  # $100.00


def _row(books: dict[int, dict[int, list[list[int]]]]) -> list[int]:
    row = []
    asks = sorted(p for p, q in books[-1].items() if q)
    bids = sorted((p for p, q in books[1].items() if q), reverse=True)
    for i in range(DEPTH):
        for prices, side, empty in ((asks, -1, EMPTY_PRICE), (bids, 1, -EMPTY_PRICE)):
            if i < len(prices):
                row += [prices[i], sum(q for _, q in books[side][prices[i]])]
            else:
                row += [empty, 0]
    return row


def _write_day(tmp_path: Path, seed: int, n: int = 3_000) -> tuple[Path, Path]:
    rnd = random.Random(seed)
    books: dict[int, dict[int, list[list[int]]]] = {1: {}, -1: {}}
    for k in range(1, 41):  # resting before the file starts, within the file's depth
        side = 1 if k % 2 else -1
        price = MID - side * TICK * rnd.randint(1, DEPTH)
        books[side].setdefault(price, []).append([k, 100 * rnd.randint(1, 5)])
    live = [(o[0], side, price) for side in books for price, q in books[side].items() for o in q]
    messages, rows = [], []
    next_id, t = 1_000, 34_200.0
    for _ in range(n):
        t += rnd.expovariate(20.0)
        choice = rnd.random()
        if choice < 0.45 or not live:
            side = rnd.choice([1, -1])
            best_opposite = min(books[-1]) if side == 1 and books[-1] else None
            if side == -1 and books[1]:
                best_opposite = max(books[1])
            price = MID - side * TICK * rnd.randint(1, 8)
            if best_opposite is not None and (
                price >= best_opposite if side == 1 else price <= best_opposite
            ):
                price = best_opposite - side * TICK
            size = 100 * rnd.randint(1, 5)
            books[side].setdefault(price, []).append([next_id, size])
            live.append((next_id, side, price))
            messages.append((t, 1, next_id, size, price, side))
            next_id += 1
        elif choice < 0.85:
            order_id, side, price = rnd.choice(live)
            queue = books[side][price]
            entry = next(e for e in queue if e[0] == order_id)
            if choice < 0.6 and entry[1] > 100:
                cut = 100 * rnd.randint(1, entry[1] // 100 - 1)
                entry[1] -= cut
                messages.append((t, 2, order_id, cut, price, side))
            else:
                queue.remove(entry)
                live.remove((order_id, side, price))
                messages.append((t, 3, order_id, entry[1], price, side))
            if not queue:
                del books[side][price]
        elif choice < 0.97:
            side = rnd.choice([1, -1])
            if not books[side]:
                continue
            price = max(books[side]) if side == 1 else min(books[side])
            queue = books[side][price]
            entry = queue[0]
            size = min(entry[1], 100 * rnd.randint(1, 5))
            entry[1] -= size
            if not entry[1]:
                queue.pop(0)
                live.remove((entry[0], side, price))
                if not queue:
                    del books[side][price]
            messages.append((t, 4, entry[0], size, price, side))
        else:
            messages.append((t, 5, 0, 100, MID, rnd.choice([1, -1])))
        rows.append(_row(books))
    message_file = tmp_path / "TEST_2026-11-20_34200000_57600000_message_5.csv"
    orderbook_file = tmp_path / "TEST_2026-11-20_34200000_57600000_orderbook_5.csv"
    message_file.write_text(
        "".join(f"{m[0]:.9f},{m[1]},{m[2]},{m[3]},{m[4]},{m[5]}\n" for m in messages)
    )
    orderbook_file.write_text("".join(",".join(map(str, r)) + "\n" for r in rows))
    return message_file, orderbook_file


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_replay_rebuilds_the_orderbook_file_row_by_row(tmp_path: Path, seed: int) -> None:
    day = read_lobster(*_write_day(tmp_path, seed))
    replay = LobsterReplay(day)
    assert day.orderbook is not None

    for row in range(1, replay.rows):
        replay.replay(row + 1)
        assert replay.levels_after(DEPTH).tolist() == day.orderbook[row].tolist(), f"row {row}"


def test_replay_prints_every_execution_and_quotes_the_top(tmp_path: Path) -> None:
    day = read_lobster(*_write_day(tmp_path, 4))
    records = LobsterReplay(day).replay()

    executions = day.messages[1:][np.isin(day.messages[1:, 1], [4, 5])]
    trades = records[records["kind"] == OUT_TRADE]
    assert trades["qty"].tolist() == executions[:, 3].astype(int).tolist()
    assert trades["price"].tolist() == (executions[:, 4].astype(int) * 100_000).tolist()
    quotes = records[records["kind"] == OUT_QUOTE]
    both = (quotes["price"] > 0) & (quotes["price2"] > 0)
    assert np.all(quotes["price"][both] < quotes["price2"][both])
    assert records["t"][0] >= 0.0  # seconds after the 09:30 open


def test_a_file_that_is_not_lobster_is_refused_with_its_row(tmp_path: Path) -> None:
    bad = tmp_path / "message.csv"
    bad.write_text("34200.1,1,5,100,1000000,1\n34200.2,9,6,100,1000000,1\n")

    with pytest.raises(InvalidArgument) as raised:
        read_lobster(bad)

    assert raised.value.violations[0].field.endswith("row 2 type")


def test_lobster_command_prints_the_day_and_plots_it(tmp_path: Path) -> None:
    messages, orderbook = _write_day(tmp_path, 5)
    plot = tmp_path / "day.png"

    result = CliRunner().invoke(
        main, ["lobster", str(messages), str(orderbook), "--plot", str(plot)], terminal_width=200
    )

    assert result.exit_code == 0, result.output
    assert "prints" in result.output
    assert "3,000" in result.output  # messages
    assert plot.read_bytes().startswith(b"\x89PNG")


def test_hidden_execution_between_ticks_prints_at_its_own_price(tmp_path: Path) -> None:
    messages, orderbook = _write_day(tmp_path, 6, n=50)
    text = messages.read_text().splitlines()
    text[10] = f"{34_300.0:.9f},5,0,100,{MID + 50},1"  # $100.005, hidden
    messages.write_text("\n".join(text) + "\n")

    records = LobsterReplay(read_lobster(messages, orderbook)).replay(11)

    trades = records[records["kind"] == OUT_TRADE]
    assert trades["price"][-1] == 100_005_000_000


def test_tick_finer_than_lobster_prices_or_off_grid_prices_are_refused(tmp_path: Path) -> None:
    day = read_lobster(*_write_day(tmp_path, 7, n=50))

    with pytest.raises(InvalidArgument, match="multiple of LOBSTER"):
        LobsterReplay(day, tick_nanos=50_000)
    with pytest.raises(InvalidArgument, match="not on this tick grid"):
        LobsterReplay(day, tick_nanos=30_000_000)  # $0.03: $100.01 is off it
