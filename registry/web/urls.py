"""The dashboard's URLs. They are part of the product: links and bookmarks must keep working."""

from django.contrib.auth import views as auth_views
from django.urls import path, register_converter
from django.views.generic import RedirectView

from registry.web.converters import ModelNameConverter
from registry.web.views import (
    access,
    account,
    browse,
    cards,
    compare,
    danger,
    datasets,
    edit,
    governance,
    health,
    lineage,
)

register_converter(ModelNameConverter, "model")

urlpatterns = [
    path("", RedirectView.as_view(url="/models/", permanent=False), name="home"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", health.metrics, name="metrics"),
    path("favicon.ico", health.favicon, name="favicon"),
    path("login/", account.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("profile/", account.profile, name="profile"),
    path("profile/tokens/<int:pk>/revoke/", account.revoke_token, name="revoke_token"),
    path("profile/password/", account.password_change, name="password_change"),
    path("profile/details/", account.details_change, name="details_change"),
    # Models and their versions
    path("models/", browse.model_list, name="model_list"),
    path("new-model/", edit.model_create, name="model_create"),
    path("register/", edit.version_register, name="version_register"),
    path("markdown-preview/", edit.markdown_preview, name="markdown_preview"),
    path("models/<model:name>/", browse.model_detail, name="model_detail"),
    path("models/<model:name>/description/", edit.description_edit, name="model_description"),
    path("models/<model:name>/tags/", edit.tags_edit, name="model_tags"),
    path("models/<model:name>/aliases/", edit.alias_set, name="alias_set"),
    path("models/<model:name>/aliases/delete/", edit.alias_delete, name="alias_delete"),
    path("models/<model:name>/rename/", danger.model_rename, name="model_rename"),
    path("models/<model:name>/delete/", danger.model_delete, name="model_delete"),
    path("models/<model:name>/versions/<int:version>/description/", edit.description_edit, name="version_description"),
    path("models/<model:name>/versions/<int:version>/tags/", edit.tags_edit, name="version_tags"),
    path("models/<model:name>/versions/<int:version>/delete/", danger.version_delete, name="version_delete"),
    path("models/<model:name>/versions/<int:version>/rescan/", edit.version_rescan, name="version_rescan"),
    path("models/<model:name>/versions/<int:version>/", browse.version_detail, name="version_detail"),
    path("models/<model:name>/versions/<int:version>/lineage/", lineage.version_lineage, name="version_lineage"),
    path("models/<model:name>/card/", cards.card_edit, name="model_card"),
    path("models/<model:name>/card.html", cards.card_export, name="model_card_export"),
    path("models/<model:name>/versions/<int:version>/card/", cards.card_edit, name="version_card"),
    path("models/<model:name>/versions/<int:version>/card.html", cards.card_export, name="version_card_export"),
    path(
        "models/<model:name>/versions/<int:version>/request-stage/",
        governance.version_request_transition,
        name="version_request_transition",
    ),
    path("models/<model:name>/versions/<int:version>/move/", governance.version_move, name="version_move"),
    path("models/<model:name>/rollback/", governance.model_rollback, name="model_rollback"),
    path("models/<model:name>/audit/", governance.model_audit, name="model_audit"),
    path("models/<model:name>/access/grant/", access.model_grant, name="model_grant"),
    path("models/<model:name>/access/revoke/", access.model_revoke, name="model_revoke"),
    path("models/<model:name>/access/settings/", access.model_access_settings, name="model_access_settings"),
    path(
        "models/<model:name>/versions/<int:version>/artifacts/<path:path>",
        browse.version_artifact_download,
        name="version_artifact",
    ),
    path(
        "models/<model:name>/versions/<int:version>/preview/<path:path>",
        browse.version_artifact_preview,
        name="version_artifact_preview",
    ),
    # Experiments and runs
    path("experiments/", browse.experiment_list, name="experiment_list"),
    path("experiments/<int:pk>/", browse.experiment_detail, name="experiment_detail"),
    path("experiments/<int:pk>/rename/", danger.experiment_rename, name="experiment_rename"),
    path("experiments/<int:pk>/access/grant/", access.experiment_grant, name="experiment_grant"),
    path("experiments/<int:pk>/access/revoke/", access.experiment_revoke, name="experiment_revoke"),
    path("experiments/<int:pk>/access/settings/", access.experiment_access_settings, name="experiment_access_settings"),
    path("runs/<str:run_id>/", browse.run_detail, name="run_detail"),
    path("runs/<str:run_id>/metrics/<path:key>/", browse.metric_history, name="metric_history"),
    path("runs/<str:run_id>/artifacts/<path:path>", browse.run_artifact_download, name="run_artifact"),
    path("runs/<str:run_id>/preview/<path:path>", browse.run_artifact_preview, name="run_artifact_preview"),
    # Governance
    path("approvals/", governance.approval_list, name="approval_list"),
    path("audit/", governance.audit_log, name="audit_log"),
    path("approvals/<int:pk>/approve/", governance.request_approve, name="request_approve"),
    path("approvals/<int:pk>/reject/", governance.request_reject, name="request_reject"),
    path("approvals/<int:pk>/cancel/", governance.request_cancel, name="request_cancel"),
    # Comparisons
    path("compare/", compare.compare, name="compare"),
    # Datasets
    path("datasets/", datasets.dataset_list, name="dataset_list"),
    path("datasets/compare/", datasets.dataset_compare, name="dataset_compare"),
    path("datasets/<int:pk>/", datasets.dataset_detail, name="dataset_detail"),
    path("datasets/<int:pk>/lineage/", lineage.dataset_lineage, name="dataset_lineage"),
]
