"""The insight page's charts, drawn on the server as inline SVG: no script, no tiles, nothing
fetched. Colours are presentation attributes (the content security policy allows no inline style);
every chart has role="img" with a <title> and <desc>, and the page has a table of the same
figures beside it."""

from __future__ import annotations

import math
from collections.abc import Sequence

from django.utils.dateformat import format as date_format
from django.utils.html import escape, format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from o2o.money import format_money

from .vendor import Weeks, When, Where

# Light to dark, the brand's green last (base.html theme-color).
RAMP = ("#e3f2ea", "#b0dcc4", "#6fc09a", "#2f9a6a", "#0b7a53")
LAST_WEEK = "#9aa5a0"
MAP_WIDTH = 320
PAD = 12


def shade(value: int, peak: int) -> str:
    """The ramp's colour for `value` out of `peak` (the lightest for anything above nothing)."""
    if peak <= 0 or value <= 0:
        return "#f4f6f5"
    return RAMP[min(len(RAMP) - 1, math.ceil(value * len(RAMP) / peak) - 1)]


def legend(peak: int, money: bool = True) -> list[tuple[str, str]]:
    """(colour, the values it stands for) for each step of the ramp `shade` uses: step i takes
    the values above i/5 of the peak up to (i+1)/5 of it."""
    steps = len(RAMP)
    out = []
    for i, colour in enumerate(RAMP):
        low, high = peak * i // steps + 1, peak * (i + 1) // steps
        if low > high:
            continue
        shown = [format_money(v) if money else str(v) for v in (low, high)]
        text = shown[0] if low == high else f"{shown[0]}–{shown[1]}"
        if not money:  # "1 unit", "2–3 units"
            text = ngettext("%(n)s unit", "%(n)s units", high) % {"n": text}
        out.append((colour, text))
    return out


def _svg(width: float, height: float, title: str, desc: str, body: SafeString, cls: str) -> str:
    return format_html(
        '<svg class="{}" role="img" viewBox="0 0 {} {}" width="100%" aria-labelledby="{}-t {}-d"'
        ' xmlns="http://www.w3.org/2000/svg"><title id="{}-t">{}</title><desc id="{}-d">{}</desc>'
        "{}</svg>",
        cls,
        round(width),
        round(height),
        cls,
        cls,
        cls,
        title,
        cls,
        desc,
        body,
    )


def heat_map(where: Where) -> SafeString:
    """The areas as hexagons around the vendor's home base, filled by amount: an equirectangular
    projection (longitude scaled by the cosine of the latitude), north up, fitted to the box."""
    shapes = where.mapped
    points = [p for a in shapes for p in a.boundary] + [where.home]
    lat0 = sum(p[0] for p in points) / len(points)
    k = math.cos(math.radians(lat0))
    xs = [p[1] * k for p in points]
    ys = [-p[0] for p in points]
    span = max(max(xs) - min(xs), max(ys) - min(ys), 1e-9)
    scale = (MAP_WIDTH - 2 * PAD) / span
    width = (max(xs) - min(xs)) * scale + 2 * PAD
    height = (max(ys) - min(ys)) * scale + 2 * PAD
    x0 = min(xs) - (MAP_WIDTH - width) / 2 / scale
    y0 = min(ys)

    def xy(lat: float, lng: float) -> tuple[float, float]:
        return round((lng * k - x0) * scale + PAD, 1), round((-lat - y0) * scale + PAD, 1)

    peak = max((a.figures.amount for a in shapes), default=0)
    parts = []
    for area in shapes:
        corners = " ".join(f"{x},{y}" for x, y in (xy(*p) for p in area.boundary))
        cx = sum(xy(*p)[0] for p in area.boundary) / len(area.boundary)
        cy = sum(xy(*p)[1] for p in area.boundary) / len(area.boundary)
        parent = area.kind == "parent"
        fill = shade(area.figures.amount, peak)
        parts.append(
            format_html(
                '<g class="area{}" data-area="{}"><title>{}: {}, {}</title>'
                '<polygon points="{}" fill="{}" stroke="{}" stroke-width="1"{}/>'
                '<text x="{}" y="{}" text-anchor="middle" dominant-baseline="middle"'
                ' font-size="11" fill="{}" aria-hidden="true">{}</text></g>',
                " area-parent" if parent else "",
                area.key,
                area.label,
                area.place,
                format_money(area.figures.amount),
                corners,
                fill,
                "#5b6b64" if parent else "#ffffff",
                mark_safe(' stroke-dasharray="4 3" fill-opacity="0.6"') if parent else "",  # noqa: S308
                round(cx, 1),
                round(cy, 1),
                "#ffffff" if fill in RAMP[3:] else "#1d2a24",
                area.number,
            )
        )
    hx, hy = xy(*where.home)
    parts.append(
        format_html(
            '<g class="home"><title>{}</title><circle cx="{}" cy="{}" r="5" fill="#ffffff"'
            ' stroke="#1d2a24" stroke-width="2"/></g>',
            _("Your home base"),
            hx,
            hy,
        )
    )
    desc = _(
        "Each hexagon is an area where you sold in the last four weeks, darker where you took "
        "more; dashed ones are the rest of a larger area. The circle is your home base."
    )
    return mark_safe(  # noqa: S308 - built with format_html
        _svg(
            MAP_WIDTH,
            height,
            _("Where you sold"),
            desc,
            mark_safe("".join(parts)),  # noqa: S308
            "chart-where",
        )
    )


def hour_grid(when: When) -> SafeString:
    """Rows: products; columns: hours; darker where more units sold."""
    label_w, cell_w, cell_h, top = 84, 14, 22, 16
    width = label_w + cell_w * len(when.hours) + 2
    height = top + cell_h * max(len(when.products), 1) + 2
    parts = [
        format_html(
            '<text x="{}" y="11" font-size="9" text-anchor="middle" fill="#4a5a53">{}</text>',
            label_w + i * cell_w + cell_w / 2,
            hour,
        )
        for i, hour in enumerate(when.hours)
        if hour % 3 == 0
    ]
    counts: dict[int, str] = {}
    for row, (product_id, name) in enumerate(when.products):
        y = top + row * cell_h
        short = name if len(name) <= 10 else name[:9] + "…"
        parts.append(
            format_html(
                '<text x="0" y="{}" font-size="11" dominant-baseline="middle" fill="#1d2a24">'
                "{}</text>",
                y + cell_h / 2,
                short,
            )
        )
        # Hundreds of cells: escaped once per product and once per count, not once per cell.
        safe_name = escape(name)
        for col, units in enumerate(when.row(product_id)):
            said = counts.get(units)
            if said is None:
                said = counts[units] = escape(
                    ngettext("%(n)s unit", "%(n)s units", units) % {"n": units}
                )
            parts.append(
                f'<rect x="{label_w + col * cell_w}" y="{y + 1}" width="{cell_w - 1}" '
                f'height="{cell_h - 2}" fill="{shade(units, when.peak)}"><title>{safe_name}, '
                f"{int(when.hours[col])}:00: {said}</title></rect>"
            )
    desc = _("Units sold by product and hour of the day, darker where more were sold.")
    return mark_safe(  # noqa: S308
        _svg(
            width,
            height,
            _("When you sold"),
            desc,
            mark_safe("".join(parts)),  # noqa: S308
            "chart-when",
        )
    )


def week_bars(weeks: Weeks) -> SafeString:
    """Amount per day: last week's bar (grey) beside this week's (green)."""
    width, height, base, group = 320, 130, 110, 320 / 7
    peak = max([1, *(f.amount for _d, now, last in weeks.days for f in (now, last) if f)])
    parts: list[str] = []
    for i, (day, now, last) in enumerate(weeks.days):
        x = i * group + 6
        bars: Sequence[tuple[str, str, int | None]] = (
            (LAST_WEEK, _("last week"), last.amount),
            ("#0b7a53", _("this week"), now.amount if now else None),
        )
        for j, (colour, which, amount) in enumerate(bars):
            if amount is None:
                continue
            h = round(amount * (base - 8) / peak, 1)
            parts.append(
                format_html(
                    '<rect x="{}" y="{}" width="15" height="{}" fill="{}"><title>{} ({}): {}'
                    "</title></rect>",
                    round(x + j * 17, 1),
                    round(base - h, 1),
                    h,
                    colour,
                    date_format(day, "D"),
                    which,
                    format_money(amount),
                )
            )
        parts.append(
            format_html(
                '<text x="{}" y="{}" font-size="11" text-anchor="middle" fill="#1d2a24">{}</text>',
                round(x + 16, 1),
                base + 14,
                date_format(day, "D"),
            )
        )
    desc = _("Sales per day this week (green) beside the same day last week (grey).")
    return mark_safe(  # noqa: S308
        _svg(
            width,
            height,
            _("This week against last"),
            desc,
            mark_safe(format_html_join("", "{}", ((p,) for p in parts))),  # noqa: S308
            "chart-weeks",
        )
    )
