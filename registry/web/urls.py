from django.urls import path
from django.views.generic import RedirectView

from registry.web import views

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False), name="home"),
    path("healthz", views.healthz, name="healthz"),
]
