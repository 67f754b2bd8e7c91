"""Single sign-on with OpenID Connect, through mozilla-django-oidc: the login page's "Sign in with …" button starts the
authorization-code flow (with PKCE) at the provider, whose answer comes back to /oidc/callback/.

Who the person is comes from the provider's claims: the username from OIDC_USERNAME_CLAIM (`preferred_username`),
their teams from OIDC_GROUPS_CLAIM (`groups`), written by `accounts.services.sso_user_sync` at every sign-in, so a
team the provider drops someone from loses them here at their next sign-in. Everything is off (the views answer 404,
the backend authenticates nobody) unless OIDC_RP_CLIENT_ID is set.
"""

from __future__ import annotations

import logging

import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured
from django.http import Http404
from django.shortcuts import redirect
from django.views import View
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.utils import import_from_settings
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

from registry.accounts import services
from registry.lib.errors import Conflict

logger = logging.getLogger(__name__)

# The provider's endpoints, by setting: when one is empty and OIDC_OP_ISSUER is set, it is read from the issuer's
# discovery document (fetched once per process, at the first sign-in).
_DISCOVERED_AS = {
    "OIDC_OP_AUTHORIZATION_ENDPOINT": "authorization_endpoint",
    "OIDC_OP_TOKEN_ENDPOINT": "token_endpoint",
    "OIDC_OP_USER_ENDPOINT": "userinfo_endpoint",
    "OIDC_OP_JWKS_ENDPOINT": "jwks_uri",
}
_discovered: dict[str, dict] = {}
UNREACHABLE = (requests.RequestException, ValueError, KeyError, ImproperlyConfigured)


def discovery(issuer: str) -> dict:
    issuer = issuer.rstrip("/")
    if issuer not in _discovered:
        answer = requests.get(f"{issuer}/.well-known/openid-configuration", timeout=settings.OIDC_TIMEOUT)
        answer.raise_for_status()
        document = answer.json()
        if document.get("issuer", "").rstrip("/") != issuer:
            raise ImproperlyConfigured(f"{issuer} describes itself as issuer {document.get('issuer')!r}.")
        _discovered[issuer] = document
    return _discovered[issuer]


def setting(name: str, *default):
    """mozilla-django-oidc's settings lookup, with the endpoints discovered from OIDC_OP_ISSUER when not given."""
    if name in _DISCOVERED_AS and not getattr(settings, name, "") and settings.OIDC_OP_ISSUER:
        return discovery(settings.OIDC_OP_ISSUER)[_DISCOVERED_AS[name]]
    return import_from_settings(name, *default)


class Backend(OIDCAuthenticationBackend):
    get_settings = staticmethod(setting)

    def __init__(self, *args, **kwargs):
        self.UserModel = get_user_model()
        self.unavailable = not settings.SSO_ENABLED
        if settings.SSO_ENABLED:
            try:
                super().__init__(*args, **kwargs)
            except UNREACHABLE:
                logger.warning("Single sign-on: the provider's discovery document is unreadable.", exc_info=True)
                self.unavailable = True

    def authenticate(self, request, **kwargs):
        if self.unavailable or request is None:
            return None
        return super().authenticate(request, **kwargs)

    @staticmethod
    def username_of(claims: dict) -> str:
        value = claims.get(settings.OIDC_USERNAME_CLAIM)
        return value.strip() if isinstance(value, str) and 0 < len(value.strip()) <= 150 else ""

    def verify_claims(self, claims) -> bool:
        return bool(self.username_of(claims))

    def filter_users_by_claims(self, claims):
        username = self.username_of(claims)
        if not username:
            return self.UserModel.objects.none()
        return self.UserModel.objects.filter(**{self.UserModel.USERNAME_FIELD: username})

    def _sync(self, user, claims):
        groups = claims.get(settings.OIDC_GROUPS_CLAIM) if settings.OIDC_GROUPS_CLAIM in claims else None
        return services.sso_user_sync(
            user=user,
            username=self.username_of(claims),
            email=claims.get("email") or "",
            first_name=claims.get("given_name") or "",
            last_name=claims.get("family_name") or "",
            groups=groups,
            create_groups=settings.OIDC_CREATE_GROUPS,
        )

    def create_user(self, claims):
        try:
            return self._sync(None, claims)
        except Conflict:  # created by a concurrent first sign-in of the same person
            return self.filter_users_by_claims(claims).first()

    def update_user(self, user, claims):
        if user.has_usable_password() and not settings.OIDC_LINK_LOCAL_ACCOUNTS:
            logger.warning(
                "Refused single sign-on as %s: that account has a local password (set OIDC_LINK_LOCAL_ACCOUNTS=true "
                "to let the provider sign into such accounts).",
                user.get_username(),
            )
            return None
        return self._sync(user, claims)


class _Switchable:
    """A mozilla-django-oidc view that exists only while single sign-on is configured."""

    get_settings = staticmethod(setting)

    def __init__(self, *args, **kwargs):
        self.unavailable = False
        if settings.SSO_ENABLED:
            try:
                super().__init__(*args, **kwargs)
                return
            except UNREACHABLE:
                logger.warning("Single sign-on: the provider's discovery document is unreadable.", exc_info=True)
                self.unavailable = True
        View.__init__(self, *args, **kwargs)

    def dispatch(self, request, *args, **kwargs):
        if not settings.SSO_ENABLED:
            raise Http404("Single sign-on is not configured on this registry.")
        if self.unavailable:
            return redirect(settings.LOGIN_REDIRECT_URL_FAILURE)
        return super().dispatch(request, *args, **kwargs)


class Authenticate(_Switchable, OIDCAuthenticationRequestView):
    pass


class Callback(_Switchable, OIDCAuthenticationCallbackView):
    pass
