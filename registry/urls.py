from django.contrib import admin
from django.contrib.auth.decorators import login_not_required
from django.urls import include, path, re_path

from registry.accounts import sso
from registry.api.api import urls as api_urls
from registry.mlflow_compat import views as mlflow_views

admin.site.site_header = "Model registry administration"
admin.site.site_title = "Model registry"
admin.site.index_title = "Registry data"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", api_urls()),
    path("api/", include("registry.mlflow_compat.urls")),
    # Single sign-on (OpenID Connect); 404 unless OIDC_RP_CLIENT_ID is set.
    path("oidc/authenticate/", login_not_required(sso.Authenticate.as_view()), name="oidc_authentication_init"),
    path("oidc/callback/", login_not_required(sso.Callback.as_view()), name="oidc_authentication_callback"),
    # MLflow's artifact downloads next to its API (its UI and older clients use them). Clients that join the tracking
    # URI and the route with a slash too many ask for //get-artifact: the group takes those extra slashes.
    re_path(r"^(?:/*)(?:model-versions/)?get-artifact$", mlflow_views.run_artifact),
    path("", include("registry.web.urls")),
]
