"""The `simulate --sweep` chart as a standalone SVG, hand-written (no plotting dependency).

Contract: `render_svg(sweeps) -> str` takes the dicts `simulate.sweep` returns and draws, against
the threshold (x) and a 0-100 % axis (y), two series per sweep: the automation rate (solid) and
the review load (dashed). Each series is one `<polyline data-series=...>`; each point is a
`<circle data-series=... data-threshold=... data-value=...>` with a `<title>` tooltip, so the
chart can be checked (and read by tools) without rendering it. Axes, ticks, labels and a legend
are included; text is XML-escaped.
"""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import escape, quoteattr

W, H = 720, 420
LEFT, RIGHT, TOP, BOTTOM = 64, 200, 36, 52
COLORS = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02"]


def _series(sweeps: list[dict[str, Any]]) -> list[tuple[str, str, bool, list[tuple[float, float]]]]:
    out = []
    for i, s in enumerate(sweeps):
        who = "all thresholds" if s["concept"] == "all" else s["concept"]
        color = COLORS[i % len(COLORS)]
        out.append((f"automation rate ({who})", color, False, [(r["threshold"], r["automation_rate"]) for r in s["rows"]]))
        out.append((f"review load ({who})", color, True, [(r["threshold"], r["review_load"]) for r in s["rows"]]))
    return out


def _fmt(x: float) -> str:
    return f"{x:.2f}".rstrip("0").rstrip(".") if x != int(x) else str(int(x))


def chart_head(title: str) -> list[str]:
    """The opening lines every chart of the tool shares: the SVG element, its title, a white
    background, the heading and the two axes of the plot area."""
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
        'font-family="Helvetica, Arial, sans-serif" font-size="12">',
        f"<title>{escape(title)}</title>",
        f'<rect x="0" y="0" width="{W}" height="{H}" fill="white"/>',
        f'<text x="{LEFT}" y="{TOP - 14}" font-size="14" font-weight="bold">{escape(title)}</text>',
        f'<g class="axes" stroke="#333" stroke-width="1">'
        f'<line x1="{LEFT}" y1="{TOP + ph}" x2="{LEFT + pw}" y2="{TOP + ph}"/>'
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + ph}"/></g>',
    ]


def render_svg(sweeps: list[dict[str, Any]], title: str = "Automation rate vs review load") -> str:
    series = _series(sweeps)
    xs = [x for _n, _c, _d, pts in series for x, _y in pts] or [0.0, 1.0]
    x0, x1 = min(xs), max(xs)
    if x0 == x1:
        x0, x1 = x0 - 0.05, x1 + 0.05
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM

    def px(x: float) -> float:
        return round(LEFT + (x - x0) / (x1 - x0) * pw, 2)

    def py(y: float) -> float:
        return round(TOP + (1 - y) * ph, 2)

    out = chart_head(title)
    # grid and ticks
    for k in range(5):
        y = k / 4
        out.append(f'<line x1="{LEFT}" y1="{py(y)}" x2="{LEFT + pw}" y2="{py(y)}" stroke="#ddd"/>')
        out.append(f'<text x="{LEFT - 6}" y="{py(y) + 4}" text-anchor="end">{int(y * 100)}%</text>')
    for k in range(6):
        x = x0 + (x1 - x0) * k / 5
        out.append(f'<line x1="{px(x)}" y1="{TOP + ph}" x2="{px(x)}" y2="{TOP + ph + 5}" stroke="#333"/>')
        out.append(f'<text x="{px(x)}" y="{TOP + ph + 18}" text-anchor="middle">{_fmt(round(x, 4))}</text>')
    out.append(f'<text x="{LEFT + pw / 2}" y="{H - 12}" text-anchor="middle">threshold</text>')
    out.append(
        f'<text x="16" y="{TOP + ph / 2}" text-anchor="middle" transform="rotate(-90 16 {TOP + ph / 2})">share of inputs</text>'
    )
    # series
    for i, (name, color, dashed, pts) in enumerate(series):
        dash = ' stroke-dasharray="6 4"' if dashed else ""
        points = " ".join(f"{px(x)},{py(y)}" for x, y in pts)
        out.append(
            f'<polyline data-series={quoteattr(name)} points="{points}" fill="none" stroke="{color}" stroke-width="2"{dash}/>'
        )
        for x, y in pts:
            out.append(
                f'<circle data-series={quoteattr(name)} data-threshold="{x:g}" data-value="{y:g}" '
                f'cx="{px(x)}" cy="{py(y)}" r="3.5" fill="{"white" if dashed else color}" stroke="{color}">'
                f"<title>{escape(name)}: threshold {x:g} → {y * 100:.1f}%</title></circle>"
            )
        ly = TOP + 10 + i * 20
        lx = LEFT + pw + 16
        out.append(f'<line x1="{lx}" y1="{ly}" x2="{lx + 24}" y2="{ly}" stroke="{color}" stroke-width="2"{dash}/>')
        out.append(f'<text x="{lx + 30}" y="{ly + 4}">{escape(name)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"
