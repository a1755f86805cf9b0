"""Draw bench/results/latency_curve*.json as an SVG chart for the README.

p99 (solid) and p50 (dashed) latency against the offered rate, on a logarithmic latency axis,
for the baseline (publish → stored) and the service (publish → committed case, → webhook),
with the 50 ms goal. Written as plain SVG because the chart is a dozen points: a plotting
library would put numpy, Pillow and fonts into every install of the bench for one picture.

    python -m bench.plot_latency_curve bench/results/latency_curve.json [more.json ...]

writes each chart beside its JSON (``.svg``).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

WIDTH, HEIGHT = 720, 420
LEFT, RIGHT, TOP, BOTTOM = 64, 190, 40, 50
Y_MIN_MS, Y_MAX_MS = 0.2, 1000.0
SERIES = (  # target, latency end, label, colour
    ("baseline", "stored", "baseline: → stored", "#7f7f7f"),
    ("service", "case", "service: → committed case", "#1f77b4"),
    ("service", "webhook", "service: → webhook", "#d62728"),
)


def _x(rate: float, top_rate: float) -> float:
    return LEFT + (WIDTH - LEFT - RIGHT) * rate / top_rate


def _y(ms: float) -> float:
    ms = min(max(ms, Y_MIN_MS), Y_MAX_MS)
    span = math.log10(Y_MAX_MS) - math.log10(Y_MIN_MS)
    return TOP + (HEIGHT - TOP - BOTTOM) * (1 - (math.log10(ms) - math.log10(Y_MIN_MS)) / span)


def _polyline(points: list[tuple[float, float]], colour: str, dashed: bool) -> str:
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    dash = ' stroke-dasharray="5,4"' if dashed else ""
    return (
        f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>'
        + "".join(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"/>' for x, y in points)
    )


def chart(result: dict[str, Any], title: str) -> str:
    runs = result["runs"]
    top_rate = max(r["rate"] for r in runs) * 1.05
    goal = result["goals"]["p99_ms"]
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
        f'<text x="{LEFT}" y="22" font-size="14" font-weight="bold">{title}</text>',
    ]
    for ms in (0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000):
        y = _y(ms)
        out.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e5e5"/>'
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{ms:g}</text>'
        )
    step = 2500 if top_rate > 12000 else 1000
    for rate in range(0, int(top_rate) + 1, step):
        x = _x(rate, top_rate)
        out.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{TOP}" y2="{HEIGHT - BOTTOM}" stroke="#f0f0f0"/>'
            f'<text x="{x:.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle">{rate:,}</text>'
        )
    y_goal = _y(goal)
    out.append(
        f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y_goal:.1f}" y2="{y_goal:.1f}" '
        f'stroke="black" stroke-dasharray="2,3"/>'
        f'<text x="{LEFT + 6}" y="{y_goal - 5:.1f}">goal: p99 ≤ {goal:g} ms</text>'
    )
    legend_y = TOP + 10
    for target, end, label, colour in SERIES:
        mine = sorted((r for r in runs if r["target"] == target), key=lambda r: r["rate"])
        if not mine or end not in mine[0]["latency"]:
            continue
        for stat, dashed in (("p99_ms", False), ("p50_ms", True)):
            points = [(_x(r["rate"], top_rate), _y(r["latency"][end][stat])) for r in mine]
            out.append(_polyline(points, colour, dashed))
        knee = result.get("knee", {}).get(target)
        lx = WIDTH - RIGHT + 12
        out.append(
            f'<line x1="{lx}" x2="{lx + 22}" y1="{legend_y}" y2="{legend_y}" '
            f'stroke="{colour}" stroke-width="2"/>'
            f'<text x="{lx + 28}" y="{legend_y + 4}">{label}</text>'
        )
        if knee and end != "webhook":
            out.append(
                f'<text x="{lx + 28}" y="{legend_y + 18}" fill="#555">knee {knee:,.0f} msg/s</text>'
            )
        legend_y += 40
    out.append(
        f'<text x="{WIDTH - RIGHT + 12}" y="{legend_y + 4}" fill="#555">solid p99, dashed p50</text>'
        f'<text x="{(LEFT + WIDTH - RIGHT) / 2}" y="{HEIGHT - 12}" text-anchor="middle">'
        "offered rate (messages/s)</text>"
        f'<text x="16" y="{(TOP + HEIGHT - BOTTOM) / 2}" text-anchor="middle" '
        f'transform="rotate(-90 16 {(TOP + HEIGHT - BOTTOM) / 2})">latency (ms, log scale)</text>'
        "</svg>"
    )
    return "\n".join(out) + "\n"


def main() -> None:
    for name in sys.argv[1:]:
        path = Path(name)
        result = json.loads(path.read_text())
        database = result.get("database", "SQLite")
        title = f"Latency against rate, {database}, {result['seconds']:g} s a rate ({result['when'][:10]})"
        path.with_suffix(".svg").write_text(chart(result, title))
        print(f"wrote {path.with_suffix('.svg')}")


if __name__ == "__main__":
    main()
