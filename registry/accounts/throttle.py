"""Sign-in throttling (django-axes): which attempts count together, the client's address, and failed API tokens.

Password sign-ins (the dashboard's login form, the admin's, HTTP basic auth on the MLflow API) go through Django's
`authenticate()`, where axes' backend refuses a locked-out (username, address) and its signal handler counts the
failures. API tokens are not passwords and never reach `authenticate()`: a wrong one is counted here, per address.
"""

from __future__ import annotations

import logging

from axes.handlers.proxy import AxesProxyHandler
from django.conf import settings
from django.contrib.auth.signals import user_login_failed
from django.dispatch import receiver
from django.http import HttpRequest

logger = logging.getLogger(__name__)

# The username recorded for a failed token: not a valid Django username (no spaces or parentheses there), so it never
# collides with an account; the admin's "Access attempts" list shows it as such.
TOKEN_USERNAME = "(API token)"


def lockout_parameters(request_or_attempt, credentials=None) -> list:
    """Password failures count per (username, address): one person's typos do not lock out their colleagues behind
    the same NAT. Token failures count per address, since a token names no user."""
    username = (credentials or {}).get("username")
    if username is None:
        username = getattr(request_or_attempt, "username", None)
    if username == TOKEN_USERNAME:
        return ["ip_address"]
    return [["username", "ip_address"]]


def client_ip(request: HttpRequest) -> str | None:
    """The caller's address: REMOTE_ADDR, or, behind `LOGIN_THROTTLE_PROXY_COUNT` trusted proxies, the address the
    outermost of them saw (counted from the right of X-Forwarded-For, so a client cannot forge it)."""
    proxies = settings.LOGIN_THROTTLE_PROXY_COUNT
    if proxies > 0:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
        if len(forwarded) >= proxies:
            return forwarded[-proxies]
    return request.META.get("REMOTE_ADDR")


def token_refused(request: HttpRequest) -> None:
    """Count an unknown, revoked or expired token from this address. When the address is (or becomes) locked out,
    the request is flagged, and axes' middleware answers 429 instead of the surface's 401.

    Only the refusal path pays for this: a valid token is looked up as before, with no extra query. A token is 256
    random bits, so the throttle is not what keeps it from being guessed; it stops bursts and makes them visible."""
    if not settings.AXES_ENABLED:
        return
    credentials = {"username": TOKEN_USERNAME}
    if AxesProxyHandler.is_locked(request, credentials):
        request.axes_locked_out = True
        request.axes_credentials = credentials
        _log_lockout(request, TOKEN_USERNAME)
        return
    user_login_failed.send(sender=__name__, credentials=credentials, request=request)


@receiver(user_login_failed)
def _log_refused_sign_in(sender, credentials, request=None, **kwargs):
    if request is not None and getattr(request, "axes_locked_out", False):
        _log_lockout(request, (credentials or {}).get("username"))


def _log_lockout(request: HttpRequest, username: str | None) -> None:
    logger.warning(
        "Sign-in refused, locked out: %s from %s (%s %s). An administrator lifts it with `manage.py axes_reset_ip "
        "ADDRESS` or `axes_reset_username NAME`, or deletes the row in the admin under Axes > Access attempts.",
        username,
        getattr(request, "axes_ip_address", None),
        request.method,
        request.path,
    )
