"""Reading MLflow requests: GET parameters from the query string, other bodies as one JSON object, typed accessors
that refuse bad input with INVALID_PARAMETER_VALUE (never a 500), and opaque page tokens.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from datetime import UTC, datetime

import pydantic_core
from django.http import HttpRequest, QueryDict

from registry.mlflow_compat.errors import MlflowError, invalid

MAX_BODY_BYTES = 1024 * 1024
INT64 = 2**63
_INTEGER = re.compile(r"-?[0-9]{1,19}")


def _check_text(value, where: str = "the request") -> None:
    """Refuse strings a database cannot store (NUL, lone surrogates) anywhere in the payload."""
    if isinstance(value, str):
        if "\x00" in value:
            raise invalid(f"A string in {where} contains a NUL character.")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise invalid(f"A string in {where} is not valid Unicode (a lone surrogate).") from None
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text(key, where)
            _check_text(item, where)
    elif isinstance(value, list):
        for item in value:
            _check_text(item, where)


def invalid_value(name: str, value, hint: str = "") -> MlflowError:
    """MLflow's wording for a value of the wrong type or range (mlflow.utils.validation.invalid_value), which its
    clients and tests match on."""
    try:
        shown = json.dumps(value, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError):
        shown = repr(value)
    if len(shown) > 200:
        shown = shown[:200] + "…"
    hint = hint or f" Hint: Value was of type '{type(value).__name__}'."
    return invalid(
        f"Invalid value {shown} for parameter '{name}' supplied.{hint} See the API docs for more information about "
        "request parameters."
    )


def missing_value(name: str) -> MlflowError:
    return invalid(f"Missing value for required parameter '{name}'.")


class Params:
    """The request's parameters: `data` maps names to values; `multi` keeps repeated query parameters."""

    def __init__(self, data: dict, multi: QueryDict | None = None):
        self.data = data
        self.multi = multi

    @classmethod
    def from_request(cls, request: HttpRequest) -> Params:
        if request.method == "GET":
            query = request.GET
            data = {key: query.get(key) for key in query}
            _check_text(data, "the query string")
            return cls(data, query)
        length = request.headers.get("Content-Length") or "0"
        if not _INTEGER.fullmatch(length):
            raise invalid("The Content-Length header is not a number.")
        if int(length) > MAX_BODY_BYTES:
            _drain(request)
            raise invalid(f"The request body is {int(length):,} bytes; the limit is {MAX_BODY_BYTES:,} (1 MB).")
        raw = request.body
        if not raw.strip():
            return cls({})
        try:
            # pydantic's parser, twice as fast as json's on a 1,000-metric batch; bare NaN and Infinity refused
            # (MLflow sends them as strings).
            data = pydantic_core.from_json(raw, allow_inf_nan=False)
            # JSON can only carry NUL or a lone surrogate as a \u escape (raw control characters are refused by
            # the parser), so bodies without one, which is nearly all of them, skip the walk.
            if b"\\u" in raw:
                _check_text(data, "the request body")
        except UnicodeDecodeError:
            raise invalid("The request body is not UTF-8.") from None
        except ValueError as exc:
            raise invalid(f"The request body is not valid JSON: {exc}.") from None
        except RecursionError:
            raise invalid("The request body is nested too deeply.") from None
        if not isinstance(data, dict):
            raise invalid("The request body must be a JSON object.")
        return cls(data)

    def __contains__(self, name: str) -> bool:
        return name in self.data and self.data[name] is not None

    def raw(self, name: str, default=None):
        value = self.data.get(name)
        return default if value is None else value

    def str(self, name: str, *, required: bool = False, default: str = "", max_length: int | None = None) -> str:
        value = self.data.get(name)
        if value is None or value == "":
            if required:
                raise missing_value(name)
            return default
        if not isinstance(value, str):
            raise invalid_value(name, value)
        if max_length is not None and len(value) > max_length:
            raise invalid(f"Parameter '{name}' is {len(value)} characters long; the limit is {max_length}.")
        return value

    def int(self, name: str, *, default: int | None = None, minimum: int = -INT64, maximum: int = INT64 - 1):
        value = self.data.get(name)
        if value is None or value == "":
            return default
        return to_int(value, name, minimum=minimum, maximum=maximum)

    def bool(self, name: str, *, default: bool = False) -> bool:
        value = self.data.get(name)
        if value is None or value == "":
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise invalid(f"Parameter '{name}' must be true or false.")

    def list(self, name: str) -> list:
        if self.multi is not None:
            return [v for v in self.multi.getlist(name) if v != ""]
        value = self.data.get(name)
        if value is None:
            return []
        if not isinstance(value, list):
            raise invalid_value(name, value)
        return value

    def strings(self, name: str) -> list[str]:
        values = self.list(name)
        for value in values:
            if isinstance(value, bool) or not isinstance(value, str | int):
                raise invalid_value(name, values)
        return [str(v) for v in values]

    def objects(self, name: str) -> list[dict]:
        values = self.list(name)
        if not all(isinstance(v, dict) for v in values):
            raise invalid_value(name, values)
        return values


def _drain(request: HttpRequest, limit: int = 64 * 1024 * 1024) -> None:
    """Read (and drop) an oversized body, so the client gets our answer instead of a reset connection."""
    remaining = limit
    try:
        while remaining > 0:
            chunk = request.read(min(65536, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
    except OSError:
        pass


def to_int(value, name: str, *, minimum: int = -INT64, maximum: int = INT64 - 1) -> int:
    """An integer as MLflow's int64 fields take it: a JSON number or a string of digits (protobuf's JSON form)."""
    original = value
    if isinstance(value, bool):
        raise invalid_value(name, value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str):
        text = value.strip()
        if not _INTEGER.fullmatch(text):
            raise invalid_value(name, original)
        value = int(text)
    if not isinstance(value, int):
        raise invalid_value(name, original)
    if not minimum <= value <= maximum:
        raise invalid_value(name, original, f" It must be between {minimum} and {maximum}.")
    return value


def to_str(value, name: str, *, max_length: int | None = None, required: bool = False, numbers: bool = False) -> str:
    """A string field of a nested message (`name` says where: `metrics[0].key`). `numbers` also takes JSON numbers
    (for values MLflow's client sends as numbers)."""
    if value is None or value == "":
        if required:
            raise missing_value(name)
        return ""
    if (
        isinstance(value, bool)
        or not isinstance(value, str | int | float)
        or (not numbers and not isinstance(value, str))
    ):
        raise invalid_value(name, value)
    value = str(value)
    if max_length is not None and len(value) > max_length:
        raise invalid(f"'{name}' is {len(value)} characters long; the limit is {max_length}.")
    return value


def ms_to_datetime(value: int, name: str) -> datetime:
    try:
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise invalid(f"'{name}' is not a usable time in epoch milliseconds (got {value}).") from None


def datetime_to_ms(value: datetime | None) -> int | None:
    return None if value is None else int(value.timestamp() * 1000)


def _encode(payload: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode()


def _decode(token: str) -> dict:
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode() + b"=" * (-len(token) % 4)))
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        data = None
    if not isinstance(data, dict):
        raise invalid("The page token is not one this server issued; pass back next_page_token unchanged.")
    return data


def encode_page_token(offset: int) -> str:
    return _encode({"offset": offset})


def decode_page_token(token: str) -> int:
    if not token:
        return 0
    offset = _decode(token).get("offset")
    if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset < INT64:
        raise invalid("The page token is not one this server issued; pass back next_page_token unchanged.")
    return offset


def encode_cursor(values: list[int]) -> str:
    """A keyset page token: where the next page starts."""
    return _encode({"from": values})


def decode_cursor(token: str, *, length: int) -> list[int] | None:
    if not token:
        return None
    after = _decode(token).get("from")
    if (
        not isinstance(after, list)
        or len(after) != length
        or not all(type(v) is int and -INT64 <= v < INT64 for v in after)
    ):
        raise invalid("The page token is not one this server issued; pass back next_page_token unchanged.")
    return after


def page(queryset, params: Params, *, default: int, maximum: int, name: str = "max_results"):
    """One page of `queryset` from the request's page_token and max_results, and the token for the next."""
    limit = params.int(name, default=default, minimum=1, maximum=maximum)
    offset = decode_page_token(params.str("page_token"))
    rows = list(queryset[offset : offset + limit + 1])
    token = encode_page_token(offset + limit) if len(rows) > limit else None
    return rows[:limit], token
