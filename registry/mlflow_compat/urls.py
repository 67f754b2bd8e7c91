"""MLflow's URL layout under /api/: the tracking and registry API, the artifact proxy and the server-info probe."""

from django.urls import re_path

from registry.mlflow_compat import views

urlpatterns = [
    re_path(r"^2\.0/mlflow/(?P<endpoint>[\s\S]*)$", views.api),
    re_path(r"^2\.0/mlflow-artifacts/artifacts/?$", views.artifact_proxy),
    re_path(r"^2\.0/mlflow-artifacts/artifacts/(?P<path>[\s\S]+)$", views.artifact_proxy),
    re_path(r"^2\.0/mlflow-artifacts/mpu/(?P<action>create|complete|abort)/(?P<path>[\s\S]+)$", views.multipart),
    re_path(r"^2\.0/mlflow-artifacts/presigned/(?P<path>[\s\S]+)$", views.presigned_download),
    re_path(r"^3\.0/mlflow/server-info$", views.server_info),
    re_path(r"^3\.0/mlflow/(?P<endpoint>users/permissions/[\s\S]*)$", views.api, {"version": "3.0"}),
    # Anything else MLflow-shaped is a JSON 404: an HTML page would confuse the client.
    re_path(r"^(?:2\.0|3\.0)/mlflow(?:-artifacts)?(?:/[\s\S]*)?$", views.unknown),
]
