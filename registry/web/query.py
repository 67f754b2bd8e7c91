"""Reading the dashboard's query strings. A bad value is ignored or reported on the page, never an error page."""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.http import HttpRequest
from django.utils.http import url_has_allowed_host_and_scheme

from registry.lib.names import KEY_MAX, has_control_characters
from registry.tracking.models import METRIC_LOOKUPS

# Most columns a table shows for params or metrics, however many are asked for.
KEY_COLUMNS_MAX = 8


def choice(request: HttpRequest, name: str, allowed: tuple[str, ...], default: str) -> str:
    value = request.GET.get(name, default)
    return value if value in allowed else default


def back_path(request: HttpRequest, default: str) -> str:
    """Where a form goes back to: its posted `next` when that is a path on this site (`/models/x/`), else `default`.
    Anything else (another site, `//host`, a bare word that Django's redirect() would take for a view name) is
    ignored."""
    target = request.POST.get("next", "")
    local = target.startswith("/") and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return target if local else default


def key_list(request: HttpRequest, name: str, limit: int = KEY_COLUMNS_MAX) -> list[str] | None:
    """Keys from `?name=a,b` or `?name=a&name=b`, in order, de-duplicated and capped; None when absent.

    An empty value (`?metrics=`) is an explicit "no columns", which is why absence is told apart.
    """
    if name not in request.GET:
        return None
    keys: list[str] = []
    for raw in request.GET.getlist(name):
        for part in raw.split(","):
            key = part.strip()
            if key and key not in keys and len(key) <= KEY_MAX and not has_control_characters(key):
                keys.append(key)
    return keys[:limit]


@dataclass(frozen=True, slots=True)
class MetricFilter:
    key: str
    operator: str
    value: float

    def __str__(self) -> str:
        return f"{self.key} {self.operator} {self.value:g}"


_FILTER = re.compile(
    r"^\s*(?P<key>.+?)\s*(?P<op>>=|<=|!=|>|<|==|=)\s*(?P<value>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$"
)


def parse_metric_filter(text: str) -> MetricFilter:
    """Parse `accuracy>0.9` (operators > >= < <= = != ; == is read as =); raise ValueError with a clear message."""
    text = text.strip()
    match = _FILTER.match(text)
    if not match:
        raise ValueError(f"Ignored filter {text!r}: write it as metric, operator, number, e.g. accuracy>=0.9.")
    key = match["key"]
    if len(key) > KEY_MAX or has_control_characters(key):
        raise ValueError(f"Ignored filter {text!r}: the metric name is not a valid key.")
    operator = "=" if match["op"] == "==" else match["op"]
    assert operator in METRIC_LOOKUPS
    return MetricFilter(key, operator, float(match["value"]))


def metric_filters(request: HttpRequest, name: str = "filter") -> tuple[list[MetricFilter], list[str]]:
    """Every `?filter=` (each may hold several, comma-separated): the parsed filters and a message per bad one."""
    filters: list[MetricFilter] = []
    problems: list[str] = []
    for raw in request.GET.getlist(name):
        for part in raw.split(","):
            if not part.strip():
                continue
            try:
                parsed = parse_metric_filter(part)
            except ValueError as exc:
                problems.append(str(exc))
                continue
            if parsed not in filters:
                filters.append(parsed)
    return filters[:KEY_COLUMNS_MAX], problems


def metric_order(request: HttpRequest, name: str = "order") -> tuple[str, bool] | None:
    """`?order=-accuracy` → ("accuracy", True for descending); None when absent or unusable."""
    raw = request.GET.get(name, "").strip()
    descending = raw.startswith("-")
    key = raw[1:].strip() if descending else raw
    if not key or len(key) > KEY_MAX or has_control_characters(key):
        return None
    return key, descending
