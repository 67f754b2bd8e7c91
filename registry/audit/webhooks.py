"""Webhook delivery: sign, check the target, POST, record the attempt, retry with backoff, replay.

Each delivery is one POST of the event's payload as compact JSON (sorted keys), with these headers:

    Content-Type: application/json
    User-Agent: model-registry-webhooks/1
    X-Registry-Event: stage.changed                 (the event type)
    X-Registry-Delivery: 42                         (the delivery id: the same on retries and replays)
    X-Registry-Timestamp: 1717171717                (unix seconds when this attempt was signed)
    X-Registry-Signature: sha256=<hex>

The signature is HMAC-SHA256, keyed with the webhook's secret, over the timestamp, a dot, and the raw body:

    hex(HMAC-SHA256(secret, f"{timestamp}.".encode() + body))

A receiver checks it against the raw bytes it received (not re-serialised JSON) in constant time, and refuses
timestamps older than a few minutes so that a captured request cannot be replayed later. `verify` below does exactly
that and needs only the standard library: copy it.

A 2xx answer is a success. Anything else (3xx included: redirects are never followed), a timeout or a refused
connection is a failure retried with exponential backoff until WEBHOOK_MAX_ATTEMPTS. Targets on private, loopback,
link-local, multicast, reserved or unspecified addresses are refused (unless WEBHOOKS_ALLOW_PRIVATE_TARGETS): the
check runs when connecting, on every attempt, and the socket goes to the address that was checked, so a DNS answer
that changes between the check and the connection cannot redirect the request.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import ipaddress
import json
import random
import socket
import ssl
import time
from collections.abc import Callable
from datetime import timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from registry.audit.models import DeliveryAttempt, DeliveryStatus, WebhookDelivery

USER_AGENT = "model-registry-webhooks/1"
SIGNATURE_PREFIX = "sha256="
BACKOFF_BASE_SECONDS = 10
BACKOFF_CAP_SECONDS = 3600
# Deliveries claimed per transaction in deliver_due; each claim is leased for the time it may take to send them all.
CLAIM_CHUNK = 10
RESPONSE_READ_LIMIT = 64 * 1024

# --- Signing --------------------------------------------------------------------------------------------------------


def _key(secret: str | bytes) -> bytes:
    return secret.encode() if isinstance(secret, str) else secret


def sign(secret: str | bytes, timestamp: int | str, body: bytes) -> str:
    """`sha256=` + hex HMAC-SHA256 of `{timestamp}.` + body, keyed with the webhook's secret."""
    digest = hmac.new(_key(secret), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return SIGNATURE_PREFIX + digest


def verify(
    secret: str | bytes,
    timestamp: int | str,
    body: bytes,
    signature: str,
    *,
    tolerance: int | None = 300,
    now: float | None = None,
) -> bool:
    """What a receiver runs: the signature matches (constant-time) and the timestamp is within `tolerance` seconds
    of `now` (None skips the age check)."""
    try:
        sent_at = int(timestamp)
    except (TypeError, ValueError):
        return False
    if tolerance is not None and abs((time.time() if now is None else now) - sent_at) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body).encode(), str(signature or "").encode())


# --- Target checks --------------------------------------------------------------------------------------------------


class TargetError(Exception):
    """The target could not be reached before any byte was sent."""


class TargetRefused(TargetError):
    """The URL or the address it resolves to is not allowed: retrying will not help."""


class TargetUnresolvable(TargetError):
    """DNS gave no answer: may be temporary, so it is retried."""


# IPv6 ranges that carry an IPv4 address in their last 32 bits (NAT64): judged by the address inside.
_NAT64 = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address | None, bool]:
    """The IPv4 address inside `ip` if it carries one, and whether it alone decides (IPv4-mapped and NAT64 addresses
    are that IPv4 address; 6to4 and Teredo ones are judged on both)."""
    if ip.ipv4_mapped:
        return ip.ipv4_mapped, True
    if any(ip in net for net in _NAT64):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF), True
    if ip.sixtofour:
        return ip.sixtofour, False
    if ip.teredo:
        return ip.teredo[1], False
    return None, False


def refusal_reason(address: str) -> str | None:
    """Why `address` is not a public target ("loopback", "private", ...), or None if it is."""
    ip = ipaddress.ip_address(address)
    candidates: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = [ip]
    if isinstance(ip, ipaddress.IPv6Address):
        inner, decides = _embedded_ipv4(ip)
        if inner is not None:
            candidates = [inner] if decides else [inner, ip]
    for candidate in candidates:
        for reason, flag in (
            ("unspecified", candidate.is_unspecified),
            ("loopback", candidate.is_loopback),
            ("link-local", candidate.is_link_local),
            ("multicast", candidate.is_multicast),
            ("reserved", candidate.is_reserved),
            ("private", candidate.is_private),
            ("non-public", not candidate.is_global),
        ):
            if flag:
                return reason
    return None


def _split(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, path with query) of an http(s) URL, or TargetRefused."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise TargetRefused(f"Refused: {url!r} is not a valid URL ({exc}).") from None
    if parts.scheme not in ("http", "https"):
        raise TargetRefused(f"Refused: only http and https URLs are allowed, not {parts.scheme or 'no scheme'!r}.")
    if not parts.hostname:
        raise TargetRefused(f"Refused: {url!r} has no host.")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80), path


def check_target(url: str) -> list[str]:
    """The addresses `url` may be sent to, resolved now; TargetRefused if the URL is not http(s) or any address it
    resolves to is private, loopback, link-local, multicast, reserved or unspecified (unless
    WEBHOOKS_ALLOW_PRIVATE_TARGETS), TargetUnresolvable if DNS has no answer."""
    _scheme, host, port, _path = _split(url)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise TargetUnresolvable(f"Could not resolve {host!r}: {exc}") from None
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    if not addresses:
        raise TargetUnresolvable(f"Could not resolve {host!r}: no addresses.")
    if not settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS:
        for address in addresses:
            reason = refusal_reason(address)
            if reason:
                shown = host if host == address else f"{host} ({address})"
                raise TargetRefused(
                    f"Refused: {shown} is a {reason} address; webhooks may only target public addresses "
                    "(WEBHOOKS_ALLOW_PRIVATE_TARGETS=true lifts this)."
                )
    return addresses


def _connect_checked(url: str, port: int, timeout: float) -> socket.socket:
    """Check the target now and open a socket to one of the checked addresses (never resolving the name again)."""
    last_error: OSError | None = None
    for address in check_target(url):
        try:
            return socket.create_connection((address, port), timeout)
        except OSError as exc:
            last_error = exc
    assert last_error is not None
    raise last_error


class PinnedHTTPConnection(http.client.HTTPConnection):
    """An HTTP connection whose connect() checks the target and dials the checked IP; Host stays the URL's host."""

    def __init__(self, url: str, *, timeout: float):
        _scheme, host, port, _path = _split(url)
        super().__init__(host, port, timeout=timeout)
        self.url = url

    def connect(self) -> None:
        self.sock = _connect_checked(self.url, self.port, self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class PinnedHTTPSConnection(http.client.HTTPSConnection):
    """As PinnedHTTPConnection, with TLS verified against the URL's host name (SNI and certificate)."""

    def __init__(self, url: str, *, timeout: float):
        _scheme, host, port, _path = _split(url)
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self.url = url

    def connect(self) -> None:
        sock = _connect_checked(self.url, self.port, self.timeout)
        try:
            self.sock = self._context.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise


def _post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> tuple[int, str]:
    """POST and return (status code, error text: empty on 2xx). Raises TargetError or OSError if nothing came back."""
    scheme, _host, _port, path = _split(url)
    connection_class = PinnedHTTPSConnection if scheme == "https" else PinnedHTTPConnection
    connection = connection_class(url, timeout=timeout)
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        content = response.read(RESPONSE_READ_LIMIT)
        if 200 <= response.status < 300:
            return response.status, ""
        if 300 <= response.status < 400:
            location = response.getheader("Location") or "nowhere"
            return response.status, f"HTTP {response.status}: redirect to {location} not followed."
        excerpt = content[:300].decode("utf-8", "replace").strip()
        return response.status, f"HTTP {response.status} {response.reason}" + (f": {excerpt}" if excerpt else "")
    finally:
        connection.close()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return f"Timed out after {settings.WEBHOOK_TIMEOUT_SECONDS} s."
    if isinstance(exc, ssl.SSLError):
        return f"TLS error: {exc}"
    if isinstance(exc, ConnectionRefusedError):
        return "Connection refused."
    return f"{type(exc).__name__}: {exc}"


# --- Delivering -----------------------------------------------------------------------------------------------------


def body_of(delivery: WebhookDelivery) -> bytes:
    return json.dumps(delivery.event.payload, separators=(",", ":"), sort_keys=True).encode()


def backoff(attempts: int) -> timedelta:
    """Wait after the `attempts`-th failure: 10 s, 20 s, 40 s, ... capped at an hour, plus up to 10% jitter."""
    base = min(BACKOFF_BASE_SECONDS * 2 ** max(attempts - 1, 0), BACKOFF_CAP_SECONDS)
    return timedelta(seconds=base * (1 + random.uniform(0, 0.1)))


_OUTCOME_FIELDS = [
    "attempts",
    "last_status_code",
    "last_latency_ms",
    "last_error",
    "status",
    "delivered_at",
    "next_attempt_at",
]


def deliver(delivery: WebhookDelivery, *, replay: bool = False) -> DeliveryAttempt:
    """POST `delivery` now, record the attempt and schedule the next one (or finish the delivery).

    A replay is recorded and updates the last_* fields (and marks the delivery succeeded if it got through), but a
    failed replay leaves the delivery's status and schedule alone.
    """
    webhook = delivery.webhook
    body = body_of(delivery)
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Registry-Event": delivery.event.type,
        "X-Registry-Delivery": str(delivery.pk),
        "X-Registry-Timestamp": str(timestamp),
        "X-Registry-Signature": sign(webhook.secret, timestamp, body),
    }
    status_code: int | None = None
    latency_ms: int | None = None
    refused = False
    started = time.monotonic()
    try:
        status_code, error = _post(webhook.url, body, headers, settings.WEBHOOK_TIMEOUT_SECONDS)
        latency_ms = round((time.monotonic() - started) * 1000)
    except TargetRefused as exc:
        refused, error = True, str(exc)
    except TargetUnresolvable as exc:
        error = str(exc)
    except (OSError, http.client.HTTPException, ValueError) as exc:  # ValueError: a URL http.client cannot send
        error = _describe(exc)
        latency_ms = round((time.monotonic() - started) * 1000)
    succeeded = status_code is not None and 200 <= status_code < 300

    now = timezone.now()
    with transaction.atomic():
        # Locked and re-read: a replay from the admin may race the worker on the same delivery.
        row = WebhookDelivery.objects.select_for_update().get(pk=delivery.pk)
        attempt = DeliveryAttempt.objects.create(
            delivery=row, at=now, status_code=status_code, latency_ms=latency_ms, error=error, replay=replay
        )
        row.attempts += 1
        row.last_status_code = status_code
        row.last_latency_ms = latency_ms
        row.last_error = error
        if succeeded:
            row.status = DeliveryStatus.SUCCEEDED
            row.delivered_at = now
        elif not replay:
            if refused or row.attempts >= settings.WEBHOOK_MAX_ATTEMPTS:
                row.status = DeliveryStatus.FAILED
            else:
                row.next_attempt_at = now + backoff(row.attempts)
        row.save(update_fields=_OUTCOME_FIELDS)
    for field in _OUTCOME_FIELDS:
        setattr(delivery, field, getattr(row, field))
    return attempt


def replay(delivery: WebhookDelivery) -> DeliveryAttempt:
    """Send `delivery` again now, whatever its status; recorded with replay=True."""
    return deliver(delivery, replay=True)


def _claim(count: int) -> list[WebhookDelivery]:
    """Take up to `count` due deliveries for this worker: their next_attempt_at moves past the time it may take to
    send them all (a lease), in one transaction. On PostgreSQL rows another worker holds are skipped; on SQLite the
    IMMEDIATE transaction makes claims take turns. A worker that dies leaves its claims to be retaken at lease end."""
    now = timezone.now()
    lease = timedelta(seconds=count * (3 * settings.WEBHOOK_TIMEOUT_SECONDS + 5))
    with transaction.atomic():
        ids = list(
            WebhookDelivery.objects.due(now)
            .filter(webhook__active=True)
            .order_by("next_attempt_at", "id")
            .select_for_update(skip_locked=True, of=("self",))
            .values_list("pk", flat=True)[:count]
        )
        if not ids:
            return []
        WebhookDelivery.objects.filter(pk__in=ids).update(next_attempt_at=now + lease)
    return list(WebhookDelivery.objects.filter(pk__in=ids).select_related("webhook", "event").order_by("id"))


def deliver_due_attempts(limit: int = 100, *, stop: Callable[[], bool] | None = None) -> list[DeliveryAttempt]:
    """Claim and send up to `limit` due deliveries, one by one; the attempts made.

    `stop` is asked before each delivery: once it says yes, the claimed deliveries not yet sent are released (due
    again now) and the round ends, so a worker told to stop finishes only the delivery in flight.
    """
    attempts: list[DeliveryAttempt] = []
    while len(attempts) < limit and not (stop and stop()):
        claimed = _claim(min(CLAIM_CHUNK, limit - len(attempts)))
        if not claimed:
            break
        for index, delivery in enumerate(claimed):
            if stop and stop():
                unsent = [d.pk for d in claimed[index:]]
                WebhookDelivery.objects.filter(pk__in=unsent, status=DeliveryStatus.PENDING).update(
                    next_attempt_at=timezone.now()
                )
                return attempts
            try:
                attempts.append(deliver(delivery))
            except WebhookDelivery.DoesNotExist:
                continue  # its webhook was deleted while it was being sent
    return attempts


def deliver_due(limit: int = 100) -> int:
    """Send up to `limit` due deliveries; how many were attempted."""
    return len(deliver_due_attempts(limit))
