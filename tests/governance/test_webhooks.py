"""Webhook delivery end to end: changes through the services, the outbox, a real receiver on loopback, signatures,
retries with backoff, giving up, replay, filters, SSRF refusals and the worker command."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import signal
import socket
import ssl
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone

from registry import worker
from registry.audit import webhooks
from registry.audit.models import (
    DeliveryAttempt,
    DeliveryStatus,
    OutboxEvent,
    Webhook,
    WebhookDelivery,
    WebhookEventType,
)
from registry.catalog.models import ModelVersion, Stage
from registry.governance import services as governance
from tests.builders import alias_set, version_create, version_stage_set
from tests.concurrency import at_once
from tests.factories import RegisteredModelFactory, UserFactory

pytestmark = pytest.mark.django_db

SECRET = "s3cret-for-tests"


def deliveries() -> list[WebhookDelivery]:
    return list(WebhookDelivery.objects.select_related("event").order_by("id"))


# --- Signing --------------------------------------------------------------------------------------------------------


def test_signature_is_hmac_sha256_of_timestamp_dot_body():
    body = b'{"event":"version.created"}'
    expected = hmac.new(b"key", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert webhooks.sign("key", 1700000000, body) == "sha256=" + expected
    assert webhooks.sign("key", "1700000000", body) == "sha256=" + expected


def test_verify_refuses_wrong_secret_tampered_body_and_stale_timestamps():
    body = b'{"a":1}'
    signature = webhooks.sign("key", 1700000000, body)
    assert webhooks.verify("key", 1700000000, body, signature, now=1700000100)
    assert not webhooks.verify("other", 1700000000, body, signature, now=1700000100)
    assert not webhooks.verify("key", 1700000000, b'{"a":2}', signature, now=1700000100)
    assert not webhooks.verify("key", 1700000001, body, signature, now=1700000100)
    assert not webhooks.verify("key", 1700000000, body, signature, now=1700000000 + 301)
    assert webhooks.verify("key", 1700000000, body, signature, tolerance=None)
    assert not webhooks.verify("key", "not-a-number", body, signature)
    assert not webhooks.verify("key", 1700000000, body, "")


# --- Delivery of service events -------------------------------------------------------------------------------------


def test_a_new_version_reaches_the_receiver_signed(hook, receiver, superuser):
    model = RegisteredModelFactory(name="churn")
    version = version_create(model=model, created_by=superuser)
    event = OutboxEvent.objects.get()
    assert event.type == WebhookEventType.VERSION_CREATED

    assert webhooks.deliver_due() == 1

    [got] = receiver.requests
    delivery = WebhookDelivery.objects.get()
    assert got.path == "/hook"
    assert got.headers["Content-Type"] == "application/json"
    assert got.headers["User-Agent"] == "model-registry-webhooks/1"
    assert got.headers["X-Registry-Event"] == "version.created"
    assert got.headers["X-Registry-Delivery"] == str(delivery.pk)
    assert got.headers["Host"] == f"127.0.0.1:{receiver.port}"
    assert json.loads(got.body) == event.payload
    assert json.loads(got.body)["data"] == {
        "model": "churn",
        "version": version.version,
        "stage": "None",
        "run_id": None,
    }
    assert got.body == json.dumps(event.payload, separators=(",", ":"), sort_keys=True).encode()
    assert got.verifies(SECRET)
    assert not got.verifies("another secret")

    assert delivery.status == DeliveryStatus.SUCCEEDED
    assert delivery.attempts == 1
    assert delivery.delivered_at is not None
    assert delivery.last_status_code == 200
    [attempt] = delivery.attempt_log.all()
    assert (attempt.status_code, attempt.error, attempt.replay) == (200, "", False)
    assert attempt.latency_ms is not None

    assert webhooks.deliver_due() == 0, "a delivered event is not sent twice"
    assert len(receiver.requests) == 1


def test_every_governed_change_is_delivered_in_order(hook, receiver, superuser):
    approver = UserFactory(username="approver", is_superuser=True)
    model = RegisteredModelFactory(name="fraud")
    version = version_create(model=model, created_by=superuser)
    alias_set(model=model, alias="champion", version=version, by=superuser)
    version_stage_set(version=version, stage=Stage.STAGING, by=superuser)
    request = governance.transition_request(version=version, to_stage=Stage.PRODUCTION, by=superuser, comment="ship")
    governance.transition_approve(request_id=request.pk, by=approver, comment="ok")

    assert webhooks.deliver_due() == 6

    assert [r.event for r in receiver.requests] == [
        "version.created",
        "alias.changed",
        "stage.changed",
        "transition.requested",
        "stage.changed",
        "transition.approved",
    ]
    assert all(r.verifies(SECRET) for r in receiver.requests)
    bodies = [json.loads(r.body) for r in receiver.requests]
    assert bodies[1]["data"] == {"model": "fraud", "alias": "champion", "from_version": None, "to_version": 1}
    assert bodies[2]["data"]["from_stage"] == "None" and bodies[2]["data"]["to_stage"] == "Staging"
    assert bodies[3]["data"]["request_id"] == request.pk and bodies[3]["data"]["to_stage"] == "Production"
    assert bodies[4]["data"]["to_stage"] == "Production" and bodies[4]["data"]["kind"] == "approval"
    assert bodies[5]["data"]["status"] == "approved"
    assert {d.status for d in deliveries()} == {DeliveryStatus.SUCCEEDED}


def test_a_rejection_is_delivered(hook, receiver, superuser):
    version = version_create(model=RegisteredModelFactory())
    request = governance.transition_request(version=version, to_stage=Stage.PRODUCTION, by=superuser)
    governance.transition_reject(request_id=request.pk, by=UserFactory(is_superuser=True), comment="not yet")

    webhooks.deliver_due()

    assert [r.event for r in receiver.requests][-1] == "transition.rejected"
    assert json.loads(receiver.requests[-1].body)["data"]["status"] == "rejected"


def test_a_webhook_for_one_model_gets_nothing_of_another(db, receiver, allow_private):
    model_a, model_b = RegisteredModelFactory(name="a"), RegisteredModelFactory(name="b")
    Webhook.objects.create(name="a only", url=receiver.url, events=["version.created"], model=model_a, secret=SECRET)

    version_create(model=model_b)
    assert not OutboxEvent.objects.exists()
    version_create(model=model_a)

    assert webhooks.deliver_due() == 1
    [got] = receiver.requests
    assert json.loads(got.body)["data"]["model"] == "a"


def test_a_webhook_gets_only_the_event_types_it_subscribed_to(db, receiver, allow_private):
    Webhook.objects.create(name="stages", url=receiver.url, events=["stage.changed"], secret=SECRET)
    model = RegisteredModelFactory()
    version = version_create(model=model)
    alias_set(model=model, alias="candidate", version=version)
    version_stage_set(version=version, stage=Stage.STAGING)

    assert webhooks.deliver_due() == 1
    assert [r.event for r in receiver.requests] == ["stage.changed"]


def test_an_inactive_webhook_gets_nothing(db, receiver, allow_private):
    Webhook.objects.create(name="off", url=receiver.url, events=["version.created"], secret=SECRET, active=False)
    version_create(model=RegisteredModelFactory())
    assert not WebhookDelivery.objects.exists()
    assert webhooks.deliver_due() == 0
    assert receiver.requests == []


def test_the_outbox_is_written_in_the_transaction_of_the_change(hook, receiver):
    model = RegisteredModelFactory()

    class Abort(Exception):
        pass

    with pytest.raises(Abort), transaction.atomic():
        version_create(model=model)
        assert OutboxEvent.objects.count() == 1  # written, but only inside the transaction
        raise Abort

    assert not ModelVersion.objects.exists()
    assert not OutboxEvent.objects.exists()
    assert not WebhookDelivery.objects.exists()
    assert webhooks.deliver_due() == 0
    assert receiver.requests == []


# --- Retries, backoff, giving up, replay ----------------------------------------------------------------------------


def test_failures_are_retried_with_backoff_until_success(hook, receiver, clock):
    receiver.fail_next = 2
    version_create(model=RegisteredModelFactory())

    assert webhooks.deliver_due() == 1
    [delivery] = deliveries()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == (DeliveryStatus.PENDING, 1, 500)
    assert "HTTP 500" in delivery.last_error and "receiver says no" in delivery.last_error
    wait = delivery.next_attempt_at - clock.now
    assert timedelta(seconds=10) <= wait <= timedelta(seconds=11)

    clock.advance(seconds=9)
    assert webhooks.deliver_due() == 0, "not due before its backoff ends"
    clock.advance(seconds=2)
    assert webhooks.deliver_due() == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.PENDING, 2)
    wait = delivery.next_attempt_at - clock.now
    assert timedelta(seconds=20) <= wait <= timedelta(seconds=22), "the wait doubles"

    clock.advance(seconds=19)
    assert webhooks.deliver_due() == 0
    clock.advance(seconds=3)
    assert webhooks.deliver_due() == 1

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == (DeliveryStatus.SUCCEEDED, 3, 200)
    assert delivery.delivered_at == clock.now
    assert delivery.last_error == ""
    log = list(delivery.attempt_log.order_by("id"))
    assert [a.status_code for a in log] == [500, 500, 200]
    assert all(a.latency_ms is not None for a in log)
    assert [bool(a.error) for a in log] == [True, True, False]
    assert len(receiver.requests) == 3
    assert {r.headers["X-Registry-Delivery"] for r in receiver.requests} == {str(delivery.pk)}
    assert all(r.verifies(SECRET) for r in receiver.requests)


def test_backoff_doubles_and_is_capped_at_an_hour():
    assert timedelta(seconds=10) <= webhooks.backoff(1) <= timedelta(seconds=11)
    assert timedelta(seconds=80) <= webhooks.backoff(4) <= timedelta(seconds=88)
    for attempts in (10, 30, 1000):
        assert timedelta(hours=1) <= webhooks.backoff(attempts) <= timedelta(hours=1.1)


def test_it_gives_up_after_the_maximum_attempts(hook, receiver, clock, settings):
    settings.WEBHOOK_MAX_ATTEMPTS = 3
    receiver.status = 503
    version_create(model=RegisteredModelFactory())

    for expected in (1, 2, 3):
        assert webhooks.deliver_due() == 1
        clock.advance(hours=2)
        assert WebhookDelivery.objects.get().attempts == expected

    delivery = WebhookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.last_status_code == 503
    assert webhooks.deliver_due() == 0
    assert len(receiver.requests) == 3
    assert DeliveryAttempt.objects.count() == 3


def test_a_redirect_is_not_followed_and_counts_as_a_failure(hook, receiver):
    receiver.status = 302
    receiver.headers = {"Location": "http://169.254.169.254/latest/meta-data/"}
    version_create(model=RegisteredModelFactory())

    assert webhooks.deliver_due() == 1

    assert len(receiver.requests) == 1
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.last_status_code) == (DeliveryStatus.PENDING, 302)
    assert "not followed" in delivery.last_error


def test_a_closed_port_is_a_retried_failure(hook, receiver):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    Webhook.objects.filter(pk=hook.pk).update(url=f"http://127.0.0.1:{closed_port}/hook")
    version_create(model=RegisteredModelFactory())

    assert webhooks.deliver_due() == 1

    delivery = WebhookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.PENDING
    assert delivery.last_status_code is None
    assert delivery.last_error == "Connection refused."


def test_replay_sends_a_delivered_event_again(hook, receiver):
    version_create(model=RegisteredModelFactory())
    webhooks.deliver_due()
    delivery = WebhookDelivery.objects.get()

    attempt = webhooks.replay(delivery)

    assert attempt.replay is True
    assert attempt.status_code == 200
    assert len(receiver.requests) == 2
    first, second = receiver.requests
    assert first.body == second.body
    assert first.headers["X-Registry-Delivery"] == second.headers["X-Registry-Delivery"] == str(delivery.pk)
    assert second.verifies(SECRET)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.SUCCEEDED, 2)
    assert [a.replay for a in delivery.attempt_log.order_by("id")] == [False, True]


def test_replay_revives_a_delivery_that_gave_up(hook, receiver, settings):
    settings.WEBHOOK_MAX_ATTEMPTS = 1
    receiver.fail_next = 1
    version_create(model=RegisteredModelFactory())
    webhooks.deliver_due()
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.FAILED

    attempt = webhooks.replay(delivery)

    assert (attempt.replay, attempt.status_code) == (True, 200)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SUCCEEDED
    assert delivery.delivered_at is not None


def test_a_failed_replay_leaves_a_succeeded_delivery_succeeded(hook, receiver):
    version_create(model=RegisteredModelFactory())
    webhooks.deliver_due()
    receiver.status = 500

    attempt = webhooks.replay(WebhookDelivery.objects.get())

    assert (attempt.replay, attempt.status_code) == (True, 500)
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.SUCCEEDED
    assert delivery.last_status_code == 500


# --- Claiming -------------------------------------------------------------------------------------------------------


def test_a_claim_leases_deliveries_so_a_second_worker_skips_them(hook, receiver):
    model = RegisteredModelFactory()
    for _ in range(3):
        version_create(model=model)

    claimed = webhooks._claim(10)

    assert len(claimed) == 3
    assert webhooks._claim(10) == []
    assert all(d.next_attempt_at > timezone.now() for d in deliveries())
    assert receiver.requests == []


def test_deliver_due_respects_its_limit(hook, receiver):
    model = RegisteredModelFactory()
    for _ in range(15):
        version_create(model=model)

    assert webhooks.deliver_due(limit=12) == 12
    assert webhooks.deliver_due(limit=12) == 3
    assert len(receiver.requests) == 15


def test_a_stop_request_mid_round_releases_the_deliveries_not_yet_sent(hook, receiver):
    model = RegisteredModelFactory()
    for _ in range(3):
        version_create(model=model)

    attempts = webhooks.deliver_due_attempts(stop=lambda: len(receiver.requests) >= 1)

    assert len(attempts) == 1
    assert WebhookDelivery.objects.due().count() == 2, "released, not left leased"
    assert webhooks.deliver_due() == 2
    assert len({r.headers["X-Registry-Delivery"] for r in receiver.requests}) == 3


# --- SSRF -----------------------------------------------------------------------------------------------------------


@pytest.fixture
def no_connections(monkeypatch):
    """Any socket connection attempt fails the test (and is recorded)."""
    attempted = []

    def refuse(address, *args, **kwargs):
        attempted.append(address)
        raise AssertionError(f"a connection to {address} was attempted")

    monkeypatch.setattr(socket, "create_connection", refuse)
    return attempted


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:{port}/hook", "loopback"),
        ("http://localhost/", "loopback"),
        ("http://10.0.0.1/", "private"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://[::1]/", "loopback"),
        ("http://[::ffff:127.0.0.1]/", "loopback"),
        ("https://[::ffff:10.1.2.3]:8443/", "private"),
        ("http://0.0.0.0:{port}/", "unspecified"),
    ],
)
def test_private_targets_are_refused_before_connecting(db, receiver, no_connections, url, reason, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = False
    url = url.format(port=receiver.port)
    Webhook.objects.create(name="evil", url=url, events=["version.created"], secret=SECRET)
    version_create(model=RegisteredModelFactory())

    with pytest.raises(webhooks.TargetRefused, match=reason):
        webhooks.check_target(url)
    assert webhooks.deliver_due() == 1

    delivery = WebhookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.FAILED, "a refused target is not retried"
    assert delivery.attempts == 1
    assert delivery.last_status_code is None
    assert delivery.last_error.startswith("Refused:") and reason in delivery.last_error
    [attempt] = delivery.attempt_log.all()
    assert attempt.error == delivery.last_error
    assert no_connections == []
    assert receiver.requests == []


def test_non_http_schemes_are_refused(db, no_connections, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = True  # the scheme is refused whatever the address
    for url in ("ftp://x", "file:///etc/passwd", "gopher://127.0.0.1/", "x"):
        with pytest.raises(webhooks.TargetRefused, match="only http and https"):
            webhooks.check_target(url)

    Webhook.objects.create(name="ftp", url="http://placeholder.invalid/", events=["version.created"], secret="s")
    version_create(model=RegisteredModelFactory())
    delivery = WebhookDelivery.objects.select_related("webhook", "event").get()
    delivery.webhook.url = "ftp://x"  # the database refuses to store it; the worker must refuse it too
    attempt = webhooks.deliver(delivery)

    assert "only http and https" in attempt.error
    assert WebhookDelivery.objects.get().status == DeliveryStatus.FAILED
    assert no_connections == []


def test_a_name_that_resolves_to_a_private_address_is_refused(db, monkeypatch, no_connections, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = False
    real_getaddrinfo = socket.getaddrinfo

    def fake_getaddrinfo(host, port, *args, **kwargs):
        if host == "internal.example":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.20.30.40", port))]
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    with pytest.raises(webhooks.TargetRefused, match=r"internal\.example \(10\.20\.30\.40\) is a private address"):
        webhooks.check_target("https://internal.example/hook")
    assert no_connections == []


def test_the_connection_goes_to_the_address_that_was_checked(hook, receiver, monkeypatch):
    """DNS rebinding: the name answers loopback when checked and 10.x afterwards; only one lookup is ever made per
    attempt, the socket goes to the checked address, and the Host header keeps the name."""
    real_getaddrinfo = socket.getaddrinfo
    lookups = []

    def rebinding_getaddrinfo(host, port, *args, **kwargs):
        if host == "hooks.example":
            lookups.append(host)
            address = "127.0.0.1" if len(lookups) == 1 else "10.0.0.1"
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding_getaddrinfo)
    Webhook.objects.filter(pk=hook.pk).update(url=f"http://hooks.example:{receiver.port}/hook")
    version_create(model=RegisteredModelFactory())

    assert webhooks.deliver_due() == 1

    assert lookups == ["hooks.example"]
    [got] = receiver.requests
    assert got.headers["Host"] == f"hooks.example:{receiver.port}"
    assert WebhookDelivery.objects.get().status == DeliveryStatus.SUCCEEDED


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("10.0.0.1", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("100.64.0.1", "non-public"),
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("fe80::1", "link-local"),
        ("fc00::1", "private"),
        ("ff02::1", "multicast"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:169.254.169.254", "link-local"),
        ("64:ff9b::a00:1", "private"),  # NAT64 of 10.0.0.1
        ("2002:a00:1::1", "private"),  # 6to4 of 10.0.0.1
        ("93.184.215.14", None),
        ("2606:4700:4700::1111", None),
        ("::ffff:93.184.215.14", None),
    ],
)
def test_address_classification(address, reason):
    assert webhooks.refusal_reason(address) == reason


# --- The worker command ---------------------------------------------------------------------------------------------


def test_the_command_delivers_once_and_prints_a_summary(hook, receiver):
    version_create(model=RegisteredModelFactory())
    out = io.StringIO()

    call_command("deliver_webhooks", stdout=out)

    assert "Sent 1 webhook deliveries: 1 succeeded, 0 failed." in out.getvalue()
    assert len(receiver.requests) == 1
    out = io.StringIO()
    call_command("deliver_webhooks", stdout=out)
    assert "Sent 0 webhook deliveries" in out.getvalue()


def test_the_command_reports_failures(hook, receiver):
    receiver.status = 500
    version_create(model=RegisteredModelFactory())
    out = io.StringIO()

    call_command("deliver_webhooks", stdout=out)

    assert "1 failed" in out.getvalue()
    assert "HTTP 500" in out.getvalue()


def test_the_loop_stops_cleanly_on_sigterm(hook, receiver, monkeypatch):
    version_create(model=RegisteredModelFactory())
    # The test's transaction must survive the worker's housekeeping between rounds.
    monkeypatch.setattr(worker, "close_old_connections", lambda: None)
    rounds = []
    real_round = webhooks.deliver_due_attempts

    def counting_round(limit, stop):
        rounds.append(limit)
        if len(rounds) == 3:
            signal.raise_signal(signal.SIGTERM)
            assert stop(), "the handler ran and asked the round to stop"
        return real_round(limit, stop=stop)

    monkeypatch.setattr(webhooks, "deliver_due_attempts", counting_round)
    previous = signal.getsignal(signal.SIGTERM)
    out = io.StringIO()

    call_command("deliver_webhooks", "--loop", "--interval", "0.01", stdout=out)

    assert len(rounds) == 3, "the round in flight finishes, then the loop stops"
    assert "SIGTERM received" in out.getvalue()
    assert out.getvalue().rstrip().endswith("Stopped.")
    assert len(receiver.requests) == 1
    assert signal.getsignal(signal.SIGTERM) is previous


# --- Concurrent workers ---------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_concurrent_workers_send_each_delivery_once(receiver, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = True
    Webhook.objects.create(name="ci", url=receiver.url, events=["version.created"], secret=SECRET)
    model = RegisteredModelFactory()
    for _ in range(30):
        version_create(model=model)
    counts = at_once(lambda: webhooks.deliver_due(limit=100), 4)

    assert sum(counts) == 30
    sent = [r.headers["X-Registry-Delivery"] for r in receiver.requests]
    assert len(sent) == 30
    assert len(set(sent)) == 30, "no delivery was sent twice"
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {DeliveryStatus.SUCCEEDED}


def test_a_url_that_cannot_be_sent_is_a_recorded_failure_not_a_crash(hook, receiver):
    Webhook.objects.filter(pk=hook.pk).update(url=f"http://127.0.0.1:{receiver.port}/hoök")
    version_create(model=RegisteredModelFactory())

    assert webhooks.deliver_due() == 1

    delivery = WebhookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.PENDING
    assert "UnicodeEncodeError" in delivery.last_error
    assert receiver.requests == []


# --- TLS ------------------------------------------------------------------------------------------------------------


@pytest.fixture
def hooks_example_is_loopback(monkeypatch):
    """`hooks.example` resolves to 127.0.0.1, so that TLS is checked against a name while traffic stays local."""
    real_getaddrinfo = socket.getaddrinfo

    def fake_getaddrinfo(host, port, *args, **kwargs):
        if host == "hooks.example":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)


def test_https_is_verified_against_the_url_host_name(
    db, tls_receiver, allow_private, hooks_example_is_loopback, monkeypatch
):
    receiver, ca_file = tls_receiver
    Webhook.objects.create(
        name="tls", url=f"https://hooks.example:{receiver.port}/hook", events=["version.created"], secret=SECRET
    )
    version_create(model=RegisteredModelFactory())

    # The system's trust store does not know the test CA: the certificate is refused, nothing is sent.
    assert webhooks.deliver_due() == 1
    delivery = WebhookDelivery.objects.get()
    assert delivery.last_error.startswith("TLS error:") and "certificate verify failed" in delivery.last_error
    assert receiver.requests == []

    # Trusting the CA, the same delivery goes through: SNI and the certificate check used the URL's host name.
    real_context = ssl.create_default_context
    monkeypatch.setattr(webhooks.ssl, "create_default_context", lambda: real_context(cafile=str(ca_file)))
    attempt = webhooks.deliver(delivery)
    assert (attempt.status_code, attempt.error) == (200, "")
    [got] = receiver.requests
    assert got.headers["Host"] == f"hooks.example:{receiver.port}"
    assert got.verifies(SECRET)


def test_https_to_an_address_the_certificate_does_not_name_is_refused(db, tls_receiver, allow_private, monkeypatch):
    receiver, ca_file = tls_receiver
    real_context = ssl.create_default_context
    monkeypatch.setattr(webhooks.ssl, "create_default_context", lambda: real_context(cafile=str(ca_file)))
    Webhook.objects.create(name="tls", url=receiver.url, events=["version.created"], secret=SECRET)
    version_create(model=RegisteredModelFactory())

    webhooks.deliver_due()

    assert "TLS error" in WebhookDelivery.objects.get().last_error
    assert receiver.requests == []
