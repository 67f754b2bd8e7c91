"""The answer to a locked-out sign-in (axes' AXES_LOCKOUT_CALLABLE): 429 in each surface's own shape, a page for a
browser, with Retry-After."""

from __future__ import annotations

import math

from axes.helpers import get_cool_off
from django.shortcuts import render

from registry.api.errors import plain_error_response
from registry.mlflow_compat.errors import MlflowError, error_response

MLFLOW_PREFIXES = ("/api/2.0/", "/ajax-api/")
REQUEST_LIMIT_EXCEEDED = "REQUEST_LIMIT_EXCEEDED"  # MLflow's code for 429


def lockout_response(request, original_response=None, credentials=None):
    cool_off = get_cool_off(request)
    minutes = math.ceil(cool_off.total_seconds() / 60) if cool_off else None
    wait = f"try again in {minutes} minute{'s' if minutes != 1 else ''}" if minutes else "an administrator must lift it"
    message = (
        f"Too many failed sign-in attempts from this address: {wait}, or ask an administrator to lift the lockout."
    )
    headers = {"Retry-After": str(int(cool_off.total_seconds()))} if cool_off else {}
    path = request.path_info
    if path.startswith(MLFLOW_PREFIXES):
        response = error_response(MlflowError(REQUEST_LIMIT_EXCEEDED, message, status=429))
    elif path.startswith("/api/"):
        response = plain_error_response(429, message)
    else:
        response = render(request, "registration/lockout.html", {"minutes": minutes, "message": message}, status=429)
    for name, value in headers.items():
        response[name] = value
    return response
