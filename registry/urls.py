from django.contrib import admin
from django.urls import include, path

from registry.api.api import urls as api_urls

admin.site.site_header = "Model registry administration"
admin.site.site_title = "Model registry"
admin.site.index_title = "Registry data"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", api_urls()),
    path("api/", include("registry.mlflow_compat.urls")),
    path("", include("registry.web.urls")),
]
