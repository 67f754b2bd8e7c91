"""MLflow compatibility: the REST API the official MLflow client (3.x) speaks, served from the registry's own rows.

    MLFLOW_TRACKING_URI=https://registry.example.com MLFLOW_TRACKING_TOKEN=mrt_... python train.py

Nothing here stores MLflow data on the side: experiments, runs, params, metrics, datasets, artifacts, registered
models, versions, aliases and stages are written through the tracking, catalog and governance services, so what MLflow
logs is what our own client logs and the dashboard shows. Only MLflow 3's logged models (and their links to runs) have
tables of their own (`models.py`); their files are artifacts of their source run.

Stage transitions (`transition_model_version_stage`) follow the model's governance policy. When the policy needs
approval for the target stage, the stage is never moved: a pending StageTransitionRequest is created (or the one
already pending is reused) and the call fails with PERMISSION_DENIED naming the request and the approval page,
/approvals/, where an approver decides it. MLflow's API cannot carry an approval decision, a comment or a gate
override, so this holds for approvers too. When no approval is needed, the version moves as a recorded direct change
(governance.services.stage_change_direct, with its permission check and gates).

Layout: `views/` (route table and dispatcher, one module per area), `wire.py` (our rows <-> MLflow JSON),
`inputs.py` (reading requests, page tokens), `search.py` (MLflow filters over our rows), `services.py` (workflows),
`auth.py` (tokens and basic auth), `errors.py` (MLflow's error codes and statuses).
"""
