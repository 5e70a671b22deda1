"""TCA reports a person reads: one HTML page per order (or a set of orders) with the figures,
plots of the execution against the price path, the distributions of fill slippage by venue and
of order slippage by algorithm (the order's `algorithm`, DIRECT when it has none), and a CSV of
the fills.

Built only from what `tca.compute_from_document` computes and the same input documents, so the
page and `fillpath tca compute` never disagree. Plots are PNGs embedded in the page (base64): the
report is one file that can be mailed or archived.
"""

from __future__ import annotations

import base64
import csv
import html
import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib as mpl

mpl.use("Agg")
import matplotlib.pyplot as plt

from fillpath.monitor.tca import aggregate, compute_from_document


def _png(figure: Any) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode()


def _execution_plot(document: Mapping[str, Any], result: Mapping[str, Any]) -> str:
    tape = document.get("tape", [])
    figure, ax = plt.subplots(figsize=(9, 3.5))
    others = [t for t in tape if not t.get("own")]
    ax.scatter([t["time"] for t in others], [t["price"] for t in others], s=6, color="0.6",
               label="market prints")  # fmt: skip
    for fill in result["fills"]:
        marker = "^" if document["order"]["side"] == "buy" else "v"
        color = "tab:green" if fill["liquidity"] == "maker" else "tab:red"
        ax.scatter(fill["time"], fill["price"], s=20 + fill["quantity"] / 20, marker=marker,
                   color=color)  # fmt: skip
    arrival = result["benchmarks"]["arrival_mid"]
    ax.axhline(arrival, color="tab:blue", lw=1, label=f"arrival mid {arrival:g}")
    if result["benchmarks"]["vwap"] is not None:
        ax.axhline(result["benchmarks"]["vwap"], color="tab:orange", lw=1, ls="--",
                   label=f"interval VWAP {result['benchmarks']['vwap']:.4f}")  # fmt: skip
    ax.set_xlabel("time (s)")
    ax.set_ylabel("price")
    ax.set_title("Execution against the price path (▲/▼ our fills: green maker, red taker)")
    ax.legend(loc="best", fontsize=8)
    ax.grid(alpha=0.3)
    return _png(figure)


def _distribution_plot(groups: Mapping[str, Sequence[float]], ylabel: str, title: str) -> str:
    figure, ax = plt.subplots(figsize=(9, 3))
    names = sorted(groups)
    ax.boxplot([groups[n] for n in names], tick_labels=names)
    ax.axhline(0, color="0.5", lw=0.8)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    return _png(figure)


def _distribution_section(
    rows: Sequence[Mapping[str, Any]], by: str, metric: str, *, weight: str | None, heading: str
) -> str:
    """A table of `metric`'s distribution per value of `by` (tca.aggregate) and a box plot."""
    spread = aggregate(rows, by, metric, weight=weight)
    table = [
        (key, f"n={d['count']}, mean {d['mean']:.2f}, median {d['median']:.2f}, "
              f"p10 {d['p10']:.2f}, p90 {d['p90']:.2f}")
        for key, d in spread.items()
    ]  # fmt: skip
    groups: dict[str, list[float]] = {}
    for row in rows:
        groups.setdefault(str(row[by]), []).append(float(row[metric]))
    plot = _distribution_plot(groups, f"{metric.replace('_', ' ')} (+ = cost)", heading)
    return (
        f"<section><h2>{html.escape(heading)}</h2>{_table(table)}"
        f'<img alt="{html.escape(heading)}" src="data:image/png;base64,{plot}"></section>'
    )


def _table(rows: Sequence[tuple[str, Any]]) -> str:
    def cell(value: Any) -> str:
        if value is None:
            return "–"
        if isinstance(value, float):
            return f"{value:,.4f}"
        return html.escape(str(value))

    body = "".join(f"<tr><th>{html.escape(k)}</th><td>{cell(v)}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def render_report(documents: Sequence[Mapping[str, Any]], title: str) -> tuple[str, str]:
    """(HTML page, CSV of every fill) for the orders in `documents` (tca compute's format)."""
    sections = []
    fill_rows: list[dict[str, Any]] = []
    order_rows: list[dict[str, Any]] = []
    for number, document in enumerate(documents, start=1):
        result = compute_from_document(document)
        order = document["order"]
        name = str(order.get("id", f"order {number}"))
        algorithm = str(order.get("algorithm", "") or "DIRECT")
        if result["slippage_bps"]["arrival"] is not None:
            order_rows.append(
                {"algorithm": algorithm, "arrival_slippage_bps": result["slippage_bps"]["arrival"]}
            )
        for fill, raw in zip(result["fills"], document.get("fills", []), strict=True):
            fill_rows.append(
                {
                    "order": name,
                    "algorithm": algorithm,
                    "venue": raw.get("venue", ""),
                    **{k: v for k, v in fill.items() if k != "markouts_bps"},
                    **{f"markout_{k}_bps": v for k, v in fill["markouts_bps"].items()},
                }
            )
        shortfall = result["implementation_shortfall"]
        figures = [
            ("side / quantity", f"{order['side']} {result['quantity']:,.0f}"),
            ("filled (fill rate)", f"{result['filled_quantity']:,.0f} ({result['fill_rate']:.1%})"),
            ("average price", result["average_price"]),
            *((f"slippage vs {k} (bps)", v) for k, v in result["slippage_bps"].items()),
            ("participation", result["participation"]),
            *((f"shortfall {k} (bps)", v) for k, v in shortfall["bps"].items()),
            ("fees (currency)", result["fees"]),
            ("permanent impact (bps)", result["impact_bps"]["permanent"]),
            ("temporary impact (bps)", result["impact_bps"]["temporary"]),
        ]
        plot = _execution_plot(document, result) if result["fills"] or document.get("tape") else ""
        sections.append(
            f"<section><h2>{html.escape(name)}</h2>{_table(figures)}"
            + (f'<img alt="execution" src="data:image/png;base64,{plot}">' if plot else "")
            + "</section>"
        )
    distributions = ""
    if fill_rows:
        distributions += _distribution_section(
            fill_rows, "venue", "slippage_vs_mid_bps", weight="quantity",
            heading="By venue: fill slippage vs mid (bps)",
        )  # fmt: skip
    if len(order_rows) > 1:  # one order's slippage is no distribution
        distributions += _distribution_section(
            order_rows, "algorithm", "arrival_slippage_bps", weight=None,
            heading="By algorithm: order slippage vs arrival (bps)",
        )  # fmt: skip
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:1000px}}
table{{border-collapse:collapse;margin:1em 0}}
th,td{{padding:2px 10px;border-bottom:1px solid #ddd;text-align:left}}
td{{text-align:right;font-variant-numeric:tabular-nums}}img{{max-width:100%}}</style></head>
<body><h1>{html.escape(title)}</h1>
<p>Costs in basis points, positive = cost, for buys and sells alike: slippage = s·(P−B)/B·10⁴.</p>
{"".join(sections)}{distributions}</body></html>"""
    buffer = io.StringIO()
    if fill_rows:
        columns = list(dict.fromkeys(key for row in fill_rows for key in row))  # every horizon
        writer = csv.DictWriter(buffer, fieldnames=columns)
        writer.writeheader()
        writer.writerows(fill_rows)
    return page, buffer.getvalue()


def write_report(
    documents: Sequence[Mapping[str, Any]], out: Path, title: str = "TCA report"
) -> tuple[Path, Path]:
    """Writes `out` (HTML) and the fills CSV beside it; both paths."""
    page, table = render_report(documents, title)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    csv_path = out.with_suffix(".csv")
    csv_path.write_text(table, encoding="utf-8")
    return out, csv_path
