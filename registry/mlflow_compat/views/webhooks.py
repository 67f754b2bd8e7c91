"""MLflow 3's webhook API (`/api/2.0/mlflow/webhooks`) mapped onto the registry's webhooks (registry.audit).

MLflow's events map onto ours: `model_version.created` is `version.created`, `model_version_alias.created` and
`.deleted` are `alias.changed`. Deliveries are ours: the registry's payload, signed with HMAC-SHA256 in
`X-Registry-Signature` (registry.audit.webhooks), sent by `manage.py deliver_webhooks` with retries. Webhooks that
also carry our own events (stage changes, transition requests: set in the admin) show only their MLflow events here.
Managing webhooks takes the audit app's webhook permissions (administrators hold them).
"""

from __future__ import annotations

from django.http import HttpRequest

from registry.audit import services as audit
from registry.audit.models import Webhook, WebhookEventType
from registry.mlflow_compat.auth import Caller
from registry.mlflow_compat.errors import denied, invalid, not_found
from registry.mlflow_compat.inputs import Params, datetime_to_ms, invalid_value, page, to_str

# (MLflow entity, action) -> our event type; ours -> the MLflow events it stands for.
FROM_MLFLOW = {
    ("model_version", "created"): WebhookEventType.VERSION_CREATED,
    ("model_version_alias", "created"): WebhookEventType.ALIAS_CHANGED,
    ("model_version_alias", "deleted"): WebhookEventType.ALIAS_CHANGED,
}
TO_MLFLOW: dict[str, list[tuple[str, str]]] = {}
for _pair, _ours in FROM_MLFLOW.items():
    TO_MLFLOW.setdefault(_ours, []).append(_pair)
STATUSES = {"ACTIVE": True, "DISABLED": False}


def _events(params: Params) -> list[str]:
    ours = []
    for index, item in enumerate(params.objects("events")):
        entity = to_str(item.get("entity"), f"events[{index}].entity", required=True).lower()
        action = to_str(item.get("action"), f"events[{index}].action", required=True).lower()
        event = FROM_MLFLOW.get((entity, action))
        if event is None:
            served = ", ".join(f"{e}.{a}" for e, a in FROM_MLFLOW)
            raise invalid(
                f"This registry sends no webhook for {entity}.{action}. MLflow events it serves: {served}; stage "
                "changes and transition requests are the registry's own events (set them in the admin)."
            )
        ours.append(event)
    return ours


def _status(params: Params) -> bool | None:
    if "status" not in params:
        return None
    status = params.raw("status")
    if not isinstance(status, str) or status.upper() not in STATUSES:
        raise invalid_value("status", status, " Hint: use ACTIVE or DISABLED.")
    return STATUSES[status.upper()]


def webhook_json(hook: Webhook) -> dict:
    events = [
        {"entity": entity.upper(), "action": action.upper()}
        for ours in hook.events or []
        for entity, action in TO_MLFLOW.get(ours, [])
    ]
    created = datetime_to_ms(hook.created_at)
    return {
        "webhook_id": str(hook.pk),
        "name": hook.name,
        "url": hook.url,
        "events": events,
        "description": "",
        "status": "ACTIVE" if hook.active else "DISABLED",
        "creation_timestamp": created,
        "last_updated_timestamp": created,
    }


def _require_view(caller: Caller) -> None:
    if not caller.user.has_perm("audit.view_webhook"):
        raise denied("Webhooks are managed by administrators (the audit.view_webhook permission).")


def _webhook(caller: Caller, webhook_id: str) -> Webhook:
    _require_view(caller)
    hook = Webhook.objects.filter(pk=int(webhook_id)).first() if webhook_id.isascii() and webhook_id.isdigit() else None
    if hook is None:
        raise not_found(f"Webhook with ID {webhook_id} not found.")
    return hook


def create_webhook(request: HttpRequest, params: Params, caller: Caller) -> dict:
    hook, _secret = audit.webhook_create(
        by=caller.user,
        name=params.str("name", required=True),
        url=params.str("url", required=True),
        events=_events(params),
        secret=params.str("secret"),
        active=_status(params) is not False,
    )
    return {"webhook": webhook_json(hook)}


def list_webhooks(request: HttpRequest, params: Params, caller: Caller) -> dict:
    _require_view(caller)
    rows, token = page(Webhook.objects.order_by("pk"), params, default=100, maximum=1000)
    body = {"webhooks": [webhook_json(h) for h in rows]}
    if token:
        body["next_page_token"] = token
    return body


def get_webhook(request: HttpRequest, params: Params, caller: Caller, webhook_id: str) -> dict:
    return {"webhook": webhook_json(_webhook(caller, webhook_id))}


def update_webhook(request: HttpRequest, params: Params, caller: Caller, webhook_id: str) -> dict:
    hook = audit.webhook_update(
        webhook=_webhook(caller, webhook_id),
        by=caller.user,
        name=params.str("name") or None,
        url=params.str("url") or None,
        events=_events(params) if params.objects("events") else None,
        secret=params.str("secret") if "secret" in params else None,
        active=_status(params),
    )
    return {"webhook": webhook_json(hook)}


def delete_webhook(request: HttpRequest, params: Params, caller: Caller, webhook_id: str) -> dict:
    audit.webhook_delete(webhook=_webhook(caller, webhook_id), by=caller.user)
    return {}


def send_test_webhook(request: HttpRequest, params: Params, caller: Caller, webhook_id: str) -> dict:
    _webhook(caller, webhook_id)
    raise invalid(
        "Test deliveries are not sent from the API: deliveries go out through `manage.py deliver_webhooks`, and an "
        "administrator can replay one from the admin's webhook deliveries."
    )
