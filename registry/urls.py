from django.contrib import admin
from django.urls import include, path, re_path

from registry.api.api import urls as api_urls
from registry.mlflow_compat import views as mlflow_views

admin.site.site_header = "Model registry administration"
admin.site.site_title = "Model registry"
admin.site.index_title = "Registry data"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", api_urls()),
    path("api/", include("registry.mlflow_compat.urls")),
    # MLflow's artifact downloads next to its API (its UI and older clients use them).
    re_path(r"^/*(?:model-versions/)?get-artifact$", mlflow_views.run_artifact),
    path("", include("registry.web.urls")),
]
