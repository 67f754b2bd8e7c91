from django.contrib import admin
from django.urls import include, path

admin.site.site_header = "Model registry administration"
admin.site.site_title = "Model registry"
admin.site.index_title = "Registry data"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("registry.web.urls")),
]
