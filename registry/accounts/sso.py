"""Single sign-on with OpenID Connect, through mozilla-django-oidc: the login page's "Sign in with …" button starts the
authorization-code flow (with PKCE) at the provider, whose answer comes back to /oidc/callback/.

Who the person is comes from the provider's claims: the username from OIDC_USERNAME_CLAIM (`preferred_username`),
their teams from OIDC_GROUPS_CLAIM (`groups`), written by `accounts.services.sso_user_sync` at every sign-in, so a
team the provider drops someone from loses them here at their next sign-in. Everything is off (the views answer 404,
the backend authenticates nobody) unless OIDC_RP_CLIENT_ID is set.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth import get_user_model
from django.http import Http404
from django.views import View
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

from registry.accounts import services
from registry.lib.errors import Conflict

logger = logging.getLogger(__name__)


class Backend(OIDCAuthenticationBackend):
    def __init__(self, *args, **kwargs):
        self.UserModel = get_user_model()
        if settings.SSO_ENABLED:
            super().__init__(*args, **kwargs)

    def authenticate(self, request, **kwargs):
        if not settings.SSO_ENABLED or request is None:
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

    def __init__(self, *args, **kwargs):
        if settings.SSO_ENABLED:
            super().__init__(*args, **kwargs)
        else:
            View.__init__(self, *args, **kwargs)

    def dispatch(self, request, *args, **kwargs):
        if not settings.SSO_ENABLED:
            raise Http404("Single sign-on is not configured on this registry.")
        return super().dispatch(request, *args, **kwargs)


class Authenticate(_Switchable, OIDCAuthenticationRequestView):
    pass


class Callback(_Switchable, OIDCAuthenticationCallbackView):
    pass
