"""The signed-in user's profile: API tokens to create (shown once), see and revoke; their own password, name and
email; what was done to their account, and by whom."""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import authenticate, update_session_auth_hash
from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from registry.accounts import services as accounts
from registry.accounts.models import ApiToken
from registry.governance.audit_log import about_account
from registry.lib.errors import Forbidden, Invalid


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What the token is for, e.g. 'CI pipeline'.")
    scope = forms.ChoiceField(choices=ApiToken.Scope.choices, initial=ApiToken.Scope.WRITE)
    expires_in = forms.TypedChoiceField(
        choices=[("", "Never"), ("7", "In 7 days"), ("30", "In 30 days"), ("90", "In 90 days"), ("365", "In a year")],
        coerce=int,
        empty_value=None,
        required=False,
        label="Expires",
    )

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError("Give the token a name.")
        return name


class PasswordForm(forms.Form):
    current_password = forms.CharField(widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}))
    new_password = forms.CharField(
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}), strip=False, max_length=4096
    )
    new_password_again = forms.CharField(
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}), strip=False, max_length=4096
    )

    def clean(self):
        data = super().clean()
        if data.get("new_password") and data.get("new_password") != data.get("new_password_again"):
            self.add_error("new_password_again", "The two new passwords differ; type the same one twice.")
        return data


ACCOUNT_EVENTS = 10  # the newest; the audit page has the rest


class DetailsForm(forms.Form):
    first_name = forms.CharField(max_length=150, required=False, label="First name")
    last_name = forms.CharField(max_length=150, required=False, label="Last name")
    email = forms.EmailField(max_length=254, required=False, label="Email")


def _profile_page(
    request: HttpRequest, *, form=None, new_token=None, password_form=None, details_form=None
) -> HttpResponse:
    form, password_form = form or TokenForm(), password_form or PasswordForm()
    user = request.user
    details_form = details_form or DetailsForm(initial={field: getattr(user, field) for field in accounts.USER_DETAILS})
    account_events = list(about_account(user)[: ACCOUNT_EVENTS + 1])  # one more, to know whether there are older
    context = {
        "form": form,
        "new_token": new_token,
        "password_form": password_form,
        "details_form": details_form,
        "has_password": request.user.has_usable_password(),
        "sso_provider": settings.OIDC_PROVIDER_NAME if settings.SSO_ENABLED else "",
        "tokens": ApiToken.objects.filter(user=request.user).order_by("revoked_at", "-created_at"),
        "account_events": account_events[:ACCOUNT_EVENTS],
        "account_events_more": len(account_events) > ACCOUNT_EVENTS,
        "api_url": request.build_absolute_uri("/"),
        "breadcrumbs": [("Profile", None)],
    }
    status = 400 if form.errors or password_form.errors or details_form.errors else 200
    return render(request, "web/profile.html", context, status=status)


def profile(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return _profile_page(request)
    form = TokenForm(request.POST)
    if not form.is_valid():
        return _profile_page(request, form=form)
    days = form.cleaned_data["expires_in"]
    token, new_token = accounts.token_issue(
        user=request.user,
        name=form.cleaned_data["name"],
        scope=form.cleaned_data["scope"],
        expires_at=timezone.now() + timedelta(days=days) if days else None,
        by=request.user,
    )
    messages.success(request, f"Token “{token.name}” created. Copy it now: it will not be shown again.")
    return _profile_page(request, new_token=new_token)  # a fresh form: the token is made, not to be made twice


@require_POST
def password_change(request: HttpRequest) -> HttpResponse:
    """Change your own password, with your current one; every other session of yours is signed out."""
    form = PasswordForm(request.POST)
    if form.is_valid():
        # Through authenticate(), so that wrong guesses count towards the sign-in throttle as the login form's do.
        current = form.cleaned_data["current_password"]
        if authenticate(request, username=request.user.get_username(), password=current) is None:
            form.add_error("current_password", "That is not your current password.")
            return _profile_page(request, password_form=form)
        try:
            accounts.user_password_set(
                user=request.user,
                password=form.cleaned_data["new_password"],
                by=request.user,
                current_password=form.cleaned_data["current_password"],
            )
        except Forbidden:
            form.add_error("current_password", "That is not your current password.")
        except Invalid as exc:
            form.add_error("new_password", exc.message)
        else:
            update_session_auth_hash(request, request.user)
            messages.success(request, "Password changed. Your other sessions are signed out.")
            return redirect("profile")
    return _profile_page(request, password_form=form)


@require_POST
def details_change(request: HttpRequest) -> HttpResponse:
    """Your own name and email (recorded in the audit log)."""
    form = DetailsForm(request.POST)
    if form.is_valid():
        try:
            changed = accounts.user_details_set(user=request.user, by=request.user, **form.cleaned_data)
        except Invalid as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, "Name and email saved." if changed else "Nothing to change.")
            return redirect("profile")
    return _profile_page(request, details_form=form)


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
