"""The `tune --svg` chart: precision against automation, one curve per tuned concept, with the
chosen threshold marked. Hand-written SVG in the style of `sweepchart` (no plotting dependency).

Contract: `render_svg(report) -> str` takes `tune.tune(..., curves=True)`. Each concept is one
`<polyline data-concept=...>` through its grid thresholds (x: automation, the share of inputs it
accepts; y: labelled precision; thresholds accepting no labelled input are left out); the proposal
is a `<circle data-concept=... data-chosen="true" data-threshold=...>`; the target is a dashed
horizontal line. Text is XML-escaped.
"""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import escape, quoteattr

from reconciler.annotate.sweepchart import BOTTOM, COLORS, LEFT, RIGHT, TOP, H, W, chart_head


def render_svg(report: dict[str, Any]) -> str:
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM
    curves = {c: [r for r in row.get("curve", []) if r["precision"] is not None] for c, row in report["concepts"].items()}
    ys = [r["precision"] for rows in curves.values() for r in rows] + [report["target_precision"]]
    y0 = max(0.0, min(ys) - 0.02) if ys else 0.0

    def px(x: float) -> float:
        return round(LEFT + x * pw, 2)

    def py(y: float) -> float:
        return round(TOP + (1 - (y - y0) / (1 - y0 if y0 < 1 else 1)) * ph, 2)

    title = (
        f"Precision vs automation, {report['thresholder']['model']} "
        f"(target {report['target_precision']:g} at {report['confidence'] * 100:g}%)"
    )
    out = chart_head(title)
    for k in range(5):
        y = y0 + (1 - y0) * k / 4
        out.append(f'<line x1="{LEFT}" y1="{py(y)}" x2="{LEFT + pw}" y2="{py(y)}" stroke="#ddd"/>')
        out.append(f'<text x="{LEFT - 6}" y="{py(y) + 4}" text-anchor="end">{y * 100:.1f}%</text>')
    for k in range(6):
        x = k / 5
        out.append(f'<line x1="{px(x)}" y1="{TOP + ph}" x2="{px(x)}" y2="{TOP + ph + 5}" stroke="#333"/>')
        out.append(f'<text x="{px(x)}" y="{TOP + ph + 18}" text-anchor="middle">{int(x * 100)}%</text>')
    out.append(f'<text x="{LEFT + pw / 2}" y="{H - 12}" text-anchor="middle">automation (share of inputs accepted)</text>')
    out.append(
        f'<text x="16" y="{TOP + ph / 2}" text-anchor="middle" '
        f'transform="rotate(-90 16 {TOP + ph / 2})">precision (labelled)</text>'
    )
    t = report["target_precision"]
    out.append(
        f'<line data-target="{t:g}" x1="{LEFT}" y1="{py(t)}" x2="{LEFT + pw}" y2="{py(t)}" stroke="#c00" stroke-dasharray="4 3"/>'
    )
    for i, (c, rows) in enumerate(curves.items()):
        color = COLORS[i % len(COLORS)]
        row = report["concepts"][c]
        points = " ".join(f"{px(r['automation'])},{py(r['precision'])}" for r in rows)
        out.append(f'<polyline data-concept={quoteattr(c)} points="{points}" fill="none" stroke="{color}" stroke-width="2"/>')
        chosen = next((r for r in rows if abs(r["threshold"] - row["proposed"]) < 1e-9), None)
        if chosen is not None:
            out.append(
                f'<circle data-concept={quoteattr(c)} data-chosen="true" data-threshold="{row["proposed"]:g}" '
                f'cx="{px(chosen["automation"])}" cy="{py(chosen["precision"])}" r="5" fill="{color}" '
                f'stroke="black"><title>{escape(c)}: threshold {row["proposed"]:g} → automation '
                f"{chosen['automation'] * 100:.1f}%, precision {chosen['precision'] * 100:.1f}%</title></circle>"
            )
        ly, lx = TOP + 10 + i * 20, LEFT + pw + 16
        out.append(f'<line x1="{lx}" y1="{ly}" x2="{lx + 24}" y2="{ly}" stroke="{color}" stroke-width="2"/>')
        out.append(f'<text x="{lx + 30}" y="{ly + 4}">{escape(c)} ({row["proposed"]:g})</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"
