"""What the governance services refuse, each with the HTTP status an API answers with (the surfaces translate them:
registry.api.errors, registry.mlflow_compat.errors, the dashboard's messages)."""

from __future__ import annotations

from registry.governance.models import StageTransitionRequest
from registry.lib.errors import Conflict, DomainError, Forbidden


class GovernanceError(DomainError):
    """A governance rule refused the action; `status` is the HTTP status an API should answer with."""


class NotAllowed(GovernanceError, Forbidden):
    pass


class AlreadyInStage(GovernanceError, Conflict):
    """A move to the stage the version holds: the state refuses it (409)."""


class RollbackImpossible(GovernanceError, Conflict):
    """The model's Production history leaves nothing to roll back to: the state refuses it (409)."""


class ApprovalRequired(NotAllowed):
    """The move needs approval: `request` is the pending request that asks for it (created now or already open)."""

    code = "approval_required"

    def __init__(self, message: str, request: StageTransitionRequest, *, created: bool):
        super().__init__(message, [{"request_id": request.pk, "created": created}])
        self.request = request
        self.created = created


class AlreadyDecided(GovernanceError, Conflict):
    code = "already_decided"


class AlreadyPending(GovernanceError, Conflict):
    code = "already_pending"


class GatesFailed(GovernanceError, Conflict):
    code = "gates_failed"
