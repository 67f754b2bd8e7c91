"""Template filters for the dashboard: safe markdown, metric numbers, durations."""

from __future__ import annotations

import math
from datetime import timedelta
from urllib.parse import unquote

from django import template

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
