"""Template filters for the dashboard: safe markdown, metric numbers, durations."""

from __future__ import annotations

import math
from datetime import timedelta
from urllib.parse import unquote

from django import template
from django.utils.html import format_html

from registry.web.markdown import render_markdown

register = template.Library()


@register.filter(name="markdown")
def markdown_filter(text):
    return render_markdown(text)


@register.filter
def metric(value):
    """A metric value for a table cell: six significant digits, NaN and infinities spelled out, — when absent."""
    if value is None or value == "":
        return "—"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "∞" if number > 0 else "−∞"
    return f"{number:.6g}"


@register.filter
def duration(value):
    """A timedelta as its two largest units: `3 d 4 h`, `5 min 2 s`, `0.4 s`."""
    if not isinstance(value, timedelta):
        return "—"
    seconds = value.total_seconds()
    if seconds < 10:
        return f"{seconds:.1f} s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60), ("s", 1)):
        amount, seconds = divmod(seconds, size)
        if amount:
            parts.append(f"{int(amount)} {unit}")
    return " ".join(parts[:2])


@register.filter
def model_from_path(path):
    """The model name in a dashboard address (/models/NAME/...), for an error page's search box; "" otherwise."""
    parts = str(path or "").split("/")
    if len(parts) > 2 and parts[1] == "models" and parts[2]:
        return unquote(parts[2])[:256]
    return ""


_SCAN_LABELS = {
    "safe": ("safe", "files safe to load"),
    "unsafe": ("unsafe", "unsafe files"),
    "unknown": ("unknown", "scan: unknown"),
    "pending": ("scanning…", "scanning…"),
    "none": ("no files", "no files"),
}


@register.simple_tag
def scan_badge(scan, short: bool = False):
    """The file safety scan's verdict as a small badge (a version's roll-up, or one file's with `short`); the words
    carry the meaning, the colour repeats it. The title holds what was found."""
    if scan is None:
        return ""
    verdict = getattr(scan, "verdict", scan)
    labels = _SCAN_LABELS.get(verdict, (verdict, verdict))
    if hasattr(scan, "summary"):
        title = scan.summary()
    else:
        title = "; ".join(getattr(scan, "findings", None) or []) or getattr(scan, "reason", "")
    return format_html(
        '<span class="badge scan-{}"{}>{}</span>',
        verdict,
        format_html(' title="{}"', title) if title else "",
        labels[0] if short else labels[1],
    )
