"""Who is calling: `MLFLOW_TRACKING_TOKEN` (one of our API tokens, sent as Bearer) or `MLFLOW_TRACKING_USERNAME` /
`MLFLOW_TRACKING_PASSWORD` (HTTP basic, checked against Django users). The browser session is not accepted: these
endpoints are CSRF-exempt, so a cookie must never be enough to write.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import authenticate, get_user_model
from django.http import HttpRequest

from registry.accounts import throttle
from registry.accounts.models import ApiToken
from registry.mlflow_compat.errors import PERMISSION_DENIED, UNAUTHENTICATED, MlflowError

CHALLENGE = {"WWW-Authenticate": 'Bearer realm="mlflow", charset="UTF-8"'}


@dataclass(frozen=True, slots=True)
class Caller:
    user: object
    can_write: bool


class _BasicAuthCache:
    """Remembers successful basic logins for a short while, so that a training loop sending a password with every
    request does not pay a password hash (hundreds of milliseconds) each time.

    Keyed by an HMAC of the credentials; an entry holds the user's id and the password hash it was checked against,
    so changing the password (or deactivating the user) ends it at once.
    """

    def __init__(self, size: int = 256, ttl: float = 300.0):
        self.size = size
        self.ttl = ttl
        self.entries: OrderedDict[str, tuple[int, str, float]] = OrderedDict()
        self.lock = threading.Lock()

    @staticmethod
    def key(username: str, password: str) -> str:
        message = f"{username}\x00{password}".encode()
        return hmac.new(settings.SECRET_KEY.encode(), message, hashlib.sha256).hexdigest()

    def get(self, key: str) -> tuple[int, str] | None:
        with self.lock:
            entry = self.entries.get(key)
            if entry is None or entry[2] < time.monotonic():
                self.entries.pop(key, None)
                return None
            return entry[0], entry[1]

    def put(self, key: str, user_id: int, password_hash: str) -> None:
        with self.lock:
            self.entries[key] = (user_id, password_hash, time.monotonic() + self.ttl)
            self.entries.move_to_end(key)
            while len(self.entries) > self.size:
                self.entries.popitem(last=False)


basic_cache = _BasicAuthCache()


def _unauthenticated(message: str) -> MlflowError:
    return MlflowError(UNAUTHENTICATED, message, headers=CHALLENGE)


def _basic_user(request: HttpRequest, encoded: str):
    try:
        decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise _unauthenticated("The basic credentials are not valid base64 of 'username:password'.") from None
    username, sep, password = decoded.partition(":")
    if not sep or not username:
        raise _unauthenticated("The basic credentials must be 'username:password'.")
    key = basic_cache.key(username, password)
    cached = basic_cache.get(key)
    if cached is not None:
        user = get_user_model().objects.filter(pk=cached[0], is_active=True).first()
        if user is not None and user.password == cached[1] and user.get_username() == username:
            return user
    user = authenticate(request, username=username, password=password)
    if user is None or not user.is_active:
        return None
    basic_cache.put(key, user.pk, user.password)
    return user


def authenticate_caller(request: HttpRequest) -> Caller:
    """The caller behind the Authorization header, or UNAUTHENTICATED (401)."""
    header = request.headers.get("Authorization", "")
    if not header:
        raise _unauthenticated(
            "Authentication required: set MLFLOW_TRACKING_TOKEN to an API token from your profile page, or "
            "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD."
        )
    scheme, _, credentials = header.partition(" ")
    credentials = credentials.strip()
    if scheme.lower() == "bearer" and credentials:
        token = ApiToken.authenticate(credentials)
        if token is None:
            throttle.token_refused(request)
            raise _unauthenticated("The token is unknown, revoked or expired; create a new one on your profile page.")
        return Caller(user=token.user, can_write=token.can_write)
    if scheme.lower() == "basic" and credentials:
        user = _basic_user(request, credentials)
        if user is None:
            raise _unauthenticated("Wrong username or password.")
        return Caller(user=user, can_write=True)
    raise _unauthenticated("Send 'Authorization: Bearer <token>' or HTTP basic credentials.")


def require_write(caller: Caller) -> None:
    if not caller.can_write:
        raise MlflowError(PERMISSION_DENIED, "This token is read-only; create a write token to change data.")
