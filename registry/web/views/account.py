"""The signed-in user's profile: API tokens to create (shown once), see and revoke."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from registry.accounts import services as accounts
from registry.accounts.models import ApiToken


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What the token is for, e.g. 'CI pipeline'.")
    scope = forms.ChoiceField(choices=ApiToken.Scope.choices, initial=ApiToken.Scope.WRITE)

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError("Give the token a name.")
        return name


def profile(request: HttpRequest) -> HttpResponse:
    form = TokenForm()
    new_token = None
    if request.method == "POST":
        form = TokenForm(request.POST)
        if form.is_valid():
            token, new_token = accounts.token_issue(
                user=request.user, name=form.cleaned_data["name"], scope=form.cleaned_data["scope"], by=request.user
            )
            messages.success(request, f"Token “{token.name}” created. Copy it now: it will not be shown again.")
    tokens = ApiToken.objects.filter(user=request.user).order_by("revoked_at", "-created_at")
    context = {
        "form": form,
        "new_token": new_token,
        "tokens": tokens,
        "api_url": request.build_absolute_uri("/"),
        "breadcrumbs": [("Profile", None)],
    }
    return render(request, "web/profile.html", context, status=400 if form.errors else 200)


@require_POST
def revoke_token(request: HttpRequest, pk: int) -> HttpResponse:
    token = get_object_or_404(ApiToken.objects.select_related("user"), pk=pk, user=request.user)
    accounts.token_revoke(token=token, by=request.user)
    messages.success(request, f"Token “{token.name}” revoked.")
    return redirect("profile")


class LoginView(auth_views.LoginView):
    """The local login form, and the "Sign in with …" button when single sign-on is configured."""

    redirect_authenticated_user = True

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        if settings.SSO_ENABLED:
            context["sso_provider"] = settings.OIDC_PROVIDER_NAME
            context["sso_failed"] = self.request.GET.get("sso") == "failed"
        return context
