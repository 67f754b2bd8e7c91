"""Floats that JSON cannot carry: NaN and the infinities travel as the strings MLflow uses."""

from __future__ import annotations

import math

NAN = "NaN"
POS_INF = "Infinity"
NEG_INF = "-Infinity"


def float_to_json(value: float | None) -> float | str | None:
    if value is None:
        return None
    if math.isnan(value):
        return NAN
    if math.isinf(value):
        return POS_INF if value > 0 else NEG_INF
    return value


def float_from_json(value: float | int | str) -> float:
    """Accept a number or one of "NaN", "Infinity", "-Infinity" (also "inf", "-inf", "+Infinity")."""
    if isinstance(value, bool):
        raise ValueError("A metric value must be a number, not a boolean.")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text == "nan":
            return math.nan
        if text in ("infinity", "+infinity", "inf", "+inf"):
            return math.inf
        if text in ("-infinity", "-inf"):
            return -math.inf
        try:
            return float(value)
        except ValueError:
            pass
    raise ValueError(f'{value!r} is not a number (use a number, or "NaN", "Infinity", "-Infinity").')
