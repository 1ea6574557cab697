"""Server-side SVG charts for the service level report: no script, no external request, no inline style.

Every text put into a chart is escaped first; only then is the whole SVG marked safe. Colours and
lines use presentation attributes (fill=, stroke=), which a CSP of style-src 'self' allows.
"""
from __future__ import annotations

import math
from collections.abc import Callable

from markupsafe import Markup, escape

from helpdesk.formatting import number, percent

WIDTH, HEIGHT = 640, 260
LEFT, RIGHT, TOP, BOTTOM = 44, 16, 30, 36
FONT = 'font-family="system-ui, sans-serif" font-size="11" fill="#1d2330"'
BLUE, GREEN, GREY, RED, ORANGE = "#0b4f8a", "#1e7b34", "#5b6475", "#b3261e", "#a35c00"
PRIORITY_COLOURS = {1: "#b3261e", 2: "#d9534f", 3: "#c79100", 4: "#5b6475"}


def _text(value) -> str:
    """Escape any value for use inside an SVG element or attribute."""
    return str(escape(str(value)))


def _frame(chart_id: str, title: str, desc: str, body: list[str]) -> Markup:
    """Wrap chart elements in an accessible <svg> (role img, title, desc, aria-label) and mark it safe."""
    chart_id = _text(chart_id)
    return Markup(
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{_text(title)}" aria-labelledby="{chart_id}-title {chart_id}-desc" '
        f'preserveAspectRatio="xMidYMid meet">'
        f'<title id="{chart_id}-title">{_text(title)}</title><desc id="{chart_id}-desc">{_text(desc)}</desc>'
        + "".join(body) + "</svg>"
    )


def _plot_area() -> tuple[float, float, float, float]:
    return LEFT, TOP, WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM


def _y_axis(maximum: float, steps: int, label: Callable[[float], str] = number) -> list[str]:
    """Draw the grid lines with their values, written by `label` in the reader's language."""
    x0, y0, width, height = _plot_area()
    parts = []
    for step in range(steps + 1):
        value = maximum * step / steps
        y = y0 + height - height * step / steps
        parts.append(f'<line x1="{x0}" y1="{y:.1f}" x2="{x0 + width}" y2="{y:.1f}" stroke="#d8dde6" stroke-width="1"/>')
        parts.append(f'<text x="{x0 - 6}" y="{y + 4:.1f}" text-anchor="end" {FONT}>{_text(label(value))}</text>')
    return parts


def _x_labels(labels: list[str]) -> list[str]:
    x0, y0, width, height = _plot_area()
    slot = width / max(len(labels), 1)
    return [f'<text x="{x0 + slot * (i + 0.5):.1f}" y="{y0 + height + 16}" text-anchor="middle" {FONT}>{_text(label)}</text>'
            for i, label in enumerate(labels)]


def _legend(entries: list[tuple[str, str, bool]]) -> list[str]:
    """Draw a one-line legend at the top: (label, colour, dashed)."""
    parts, x = [], LEFT
    for label, colour, dashed in entries:
        dash = ' stroke-dasharray="6 4"' if dashed else ""
        parts.append(f'<line x1="{x}" y1="14" x2="{x + 22}" y2="14" stroke="{colour}" stroke-width="3"{dash}/>')
        parts.append(f'<text x="{x + 28}" y="18" {FONT}>{_text(label)}</text>')
        x += 40 + 7 * len(str(label))
    return parts


def compliance_trend(chart_id: str, labels: list[str], series: list[tuple[str, str, list[float | None]]],
                     goal: float | None, *, title: str, desc: str, goal_label: str = "") -> Markup:
    """Draw compliance lines (0–100 %) per month with the contract goal as a dashed line.

    `series` holds (label, colour, values); a month without counted clocks (None) leaves a gap.
    """
    x0, y0, width, height = _plot_area()
    slot = width / max(len(labels), 1)
    body = _y_axis(100, 4, lambda value: percent(value, 0)) + _x_labels(labels)

    def y_of(value: float) -> float:
        return y0 + height - height * max(0.0, min(100.0, value)) / 100

    if goal is not None:
        body.append(f'<line x1="{x0}" y1="{y_of(goal):.1f}" x2="{x0 + width}" y2="{y_of(goal):.1f}" '
                    f'stroke="{RED}" stroke-width="2" stroke-dasharray="6 4"/>')
    for _label, colour, values in series:
        segment: list[str] = []
        segments = [segment]
        for i, value in enumerate(values):
            if value is None:
                segment = []
                segments.append(segment)
                continue
            segment.append(f"{x0 + slot * (i + 0.5):.1f},{y_of(value):.1f}")
            body.append(f'<circle cx="{x0 + slot * (i + 0.5):.1f}" cy="{y_of(value):.1f}" r="3" fill="{colour}">'
                        f'<title>{_text(labels[i])}: {_text(percent(value))}</title></circle>')
        for points in segments:
            if len(points) > 1:
                body.append(f'<polyline points="{" ".join(points)}" fill="none" stroke="{colour}" stroke-width="2"/>')
    legend = [(label, colour, False) for label, colour, _values in series]
    if goal is not None:
        legend.append((goal_label or percent(goal), RED, True))
    return _frame(chart_id, title, desc, body + _legend(legend))


def _nice_maximum(value: float, steps: int = 4) -> float:
    """Return a round maximum >= value whose `steps` grid steps are whole numbers (1, 1.5, 2, 2.5 … 10 × 10^k)."""
    if value <= steps:
        return steps
    raw = value / steps
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(f * magnitude for f in (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10)
                if f * magnitude >= raw and float(f * magnitude).is_integer())
    return step * steps


def bars(chart_id: str, labels: list[str], series: list[tuple[str, str, list[int]]], *, title: str,
         desc: str) -> Markup:
    """Draw grouped bars: one group per label, one bar per series (label, colour, values)."""
    x0, y0, width, height = _plot_area()
    maximum = _nice_maximum(max((v for _l, _c, values in series for v in values), default=0))
    slot = width / max(len(labels), 1)
    bar = slot * 0.8 / max(len(series), 1)
    body = _y_axis(maximum, 4) + _x_labels(labels)
    for s, (name, colour, values) in enumerate(series):
        for i, value in enumerate(values):
            bar_height = height * value / maximum if maximum else 0
            x = x0 + slot * i + slot * 0.1 + bar * s
            body.append(f'<rect x="{x:.1f}" y="{y0 + height - bar_height:.1f}" width="{bar * 0.92:.1f}" '
                        f'height="{bar_height:.1f}" fill="{colour}"><title>{_text(labels[i])}, {_text(name)}: '
                        f'{_text(number(value))}</title></rect>')
    legend = _legend([(name, colour, False) for name, colour, _values in series]) if len(series) > 1 else []
    return _frame(chart_id, title, desc, body + legend)


def report_charts(report) -> dict[str, Markup]:
    """Return the three charts of a service level report: compliance trend, volume, breaches by priority."""
    from flask_babel import gettext as _

    from helpdesk.labels import PRIORITY_LABELS

    labels = [str(row["label"]) for row in report.trend]
    result = {}
    if report.trend:
        months = f"{report.trend[0]['long_label']} – {report.trend[-1]['long_label']}"
        goal_text = _("Vertragsziel %(goal)s", goal=percent(report.goal)) if report.goal is not None else ""
        result["trend"] = compliance_trend(
            "chart-trend", labels,
            [(_("Erstreaktion"), BLUE, [row["first_response_rate"] for row in report.trend]),
             (_("Lösung"), GREEN, [row["resolution_rate"] for row in report.trend])],
            report.goal, goal_label=goal_text,
            title=_("Einhaltung je Monat"),
            desc=_("Anteil eingehaltener Ziele für Erstreaktion und Lösung je Monat, %(months)s; "
                   "gestrichelt das Vertragsziel. Die Zahlen stehen auch in der Tabelle „Verlauf“.", months=months),
        )
        result["volume"] = bars(
            "chart-volume", labels,
            [(_("Eröffnet"), BLUE, [row["opened"] for row in report.trend]),
             (_("Gelöst"), GREEN, [row["resolved"] for row in report.trend])],
            title=_("Tickets je Monat"),
            desc=_("Eröffnete und gelöste Tickets je Monat, %(months)s.", months=months),
        )
    priorities = sorted(report.breaches_by_priority)
    result["breaches"] = bars(
        "chart-breaches", [str(PRIORITY_LABELS.get(p, p)) for p in priorities],
        [(_("Verletzungen"), RED, [report.breaches_by_priority[p] for p in priorities])],
        title=_("Verletzungen nach Priorität"),
        desc=_("Verletzte Ziele im Zeitraum %(label)s je Priorität: %(counts)s.", label=report.label,
               counts=", ".join(f"{PRIORITY_LABELS.get(p, p)} {report.breaches_by_priority[p]}" for p in priorities)),
    )
    return result
