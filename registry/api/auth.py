"""API authentication: per-user Bearer tokens, or the browser session (with CSRF) for the dashboard's own calls."""

from __future__ import annotations

from django.http import HttpRequest
from ninja.security import HttpBearer
from ninja.utils import check_csrf

from registry.accounts import throttle
from registry.accounts.models import ApiToken
from registry.api.errors import ApiError

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


class TokenOrSession(HttpBearer):
    """Bearer token first; without an Authorization header, a signed-in session (CSRF-checked on writes).

    A read-only token on a writing request is a 403, not a 401: the caller is known but lacks the right.
    """

    def __call__(self, request: HttpRequest):
        header = request.headers.get("Authorization")
        if header:
            scheme, _, raw = header.partition(" ")
            if scheme.lower() != "bearer" or not raw.strip():
                return None
            return self.authenticate(request, raw.strip())
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            if request.method not in SAFE_METHODS:
                failure = check_csrf(request)
                if failure:
                    raise ApiError(403, "CSRF check failed: send the X-CSRFToken header with session requests.")
            request.api_token = None
            return user
        return None

    def authenticate(self, request: HttpRequest, token: str):
        api_token = ApiToken.authenticate(token)
        if api_token is None:
            throttle.token_refused(request)
            return None
        if request.method not in SAFE_METHODS and not api_token.can_write:
            raise ApiError(403, "This token is read-only; create a write token to change data.")
        request.api_token = api_token
        request.user = api_token.user
        return api_token.user
