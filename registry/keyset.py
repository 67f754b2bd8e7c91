"""Keyset paging for long lists (a model's versions, an experiment's runs), on the dashboard and in the JSON API.

OFFSET paging makes the database read and throw away every row before the page: page 4,000 of a model with 100,000
versions cost about a second. Here a page link carries the sort key of the last (or first) row shown, as an opaque
token in `?after=` (or `?before=`), and the next page is a range seek from there: `WHERE (value, version) < (v, n)`,
as fast at the end of the table as at its start. `?last=1` is the final page (the table read backwards). The JSON API
hands the same tokens out as `next_after` and takes them back as `after`.

The order must end on a unique key so that every row has one place. Nullable keys (a metric a run never logged)
sort last in either direction, as the tables always did.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db.models import F, Q, QuerySet
from django.http import HttpRequest


@dataclass(frozen=True, slots=True)
class Key:
    """One column of the order: a field or annotation, its direction, the Python type of its values."""

    field: str
    descending: bool
    kind: type = int
    nullable: bool = False

    def order(self, *, reverse: bool = False):
        descending = self.descending != reverse
        expression = F(self.field)
        if not self.nullable:
            return expression.desc() if descending else expression.asc()
        # NULLs last when reading forwards, so first when reading backwards.
        nulls = {"nulls_first": True} if reverse else {"nulls_last": True}
        return expression.desc(**nulls) if descending else expression.asc(**nulls)

    def equal(self, value) -> Q:
        return Q(**{f"{self.field}__isnull": True}) if value is None else Q(**{self.field: value})

    def beyond(self, value, *, reverse: bool = False) -> Q | None:
        """Rows strictly past `value` in this key's order (read backwards when `reverse`); None when none can be."""
        descending = self.descending != reverse
        nulls_last = self.nullable and not reverse
        if value is None:
            # NULLs come last forwards (nothing after them), first backwards (every value is after them).
            return None if not reverse else Q(**{f"{self.field}__isnull": False})
        condition = Q(**{f"{self.field}__{'lt' if descending else 'gt'}": value})
        return condition | Q(**{f"{self.field}__isnull": True}) if nulls_last else condition

    def encode(self, value):
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return None  # NaN is stored as NULL
        if isinstance(value, datetime):
            return value.isoformat()
        if isinstance(value, float) and math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return value

    def decode(self, raw):
        if raw is None:
            if not self.nullable:
                raise ValueError("null in a key that cannot be null")
            return None
        if self.kind is datetime:
            return datetime.fromisoformat(raw)
        if self.kind is float:
            return float(raw)  # "inf" and "-inf" included
        if not isinstance(raw, self.kind) or isinstance(raw, bool):
            raise ValueError("wrong type")
        return raw


def _signature(keys: Sequence[Key]) -> str:
    return ",".join(("-" if k.descending else "") + k.field for k in keys)


def encode_token(keys: Sequence[Key], row) -> str:
    values = [k.encode(getattr(row, k.field)) for k in keys]
    raw = json.dumps([_signature(keys), *values], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(keys: Sequence[Key], token: str) -> list | None:
    """The key values a token holds, or None when it is malformed or was made for another order (then: page one)."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        signature, *values = json.loads(raw)
        if signature != _signature(keys) or len(values) != len(keys):
            return None
        return [key.decode(value) for key, value in zip(keys, values, strict=True)]
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        return None


def after(keys: Sequence[Key], values: Sequence, *, reverse: bool = False) -> Q:
    """Rows after `values` in the lexicographic order of `keys`: k1 beyond, or k1 equal and k2 beyond, and so on."""
    condition = Q(pk__in=[])
    prefix = Q()
    for key, value in zip(keys, values, strict=True):
        beyond = key.beyond(value, reverse=reverse)
        if beyond is not None:
            condition |= prefix & beyond
        prefix &= key.equal(value)
    return condition


@dataclass
class KeysetPage:
    rows: list
    count: int
    has_next: bool
    has_previous: bool
    next_token: str | None
    previous_token: str | None

    def __iter__(self) -> Iterator:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def has_other_pages(self) -> bool:
        return self.has_next or self.has_previous


def rows_after(queryset: QuerySet, keys: Sequence[Key], values: Sequence | None, limit: int) -> tuple[list, str | None]:
    """Up to `limit` rows of `queryset` in the order of `keys`, after `values` (from the start when None), and the
    token for the rows after them (None on the last page)."""
    if values is not None:
        queryset = queryset.filter(after(keys, values))
    rows = list(queryset.order_by(*(k.order() for k in keys))[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, encode_token(keys, rows[-1]) if more and rows else None


def keyset_page(request: HttpRequest, queryset: QuerySet, keys: Sequence[Key], per_page: int) -> KeysetPage:
    """The page `?after=`, `?before=` or `?last=1` asks for (page one when none, or when the token is bad).

    Queries: COUNT (the total shown beside the links), then the page itself (one row more, to know whether another
    page follows).
    """
    count = queryset.count()
    forwards = [k.order() for k in keys]
    backwards = [k.order(reverse=True) for k in keys]
    after_values = decode_token(keys, request.GET.get("after", ""))
    before_values = None if after_values else decode_token(keys, request.GET.get("before", ""))
    if before_values is not None or (after_values is None and request.GET.get("last") == "1"):
        rows = queryset.order_by(*backwards)
        if before_values is not None:
            rows = rows.filter(after(keys, before_values, reverse=True))
        rows = list(rows[: per_page + 1])
        has_previous = len(rows) > per_page
        rows = rows[:per_page][::-1]
        has_next = before_values is not None
    else:
        rows = queryset.order_by(*forwards)
        if after_values is not None:
            rows = rows.filter(after(keys, after_values))
        rows = list(rows[: per_page + 1])
        has_next = len(rows) > per_page
        rows = rows[:per_page]
        has_previous = after_values is not None
    return KeysetPage(
        rows=rows,
        count=count,
        has_next=has_next and bool(rows),
        has_previous=has_previous,
        next_token=encode_token(keys, rows[-1]) if rows else None,
        previous_token=encode_token(keys, rows[0]) if rows else None,
    )
