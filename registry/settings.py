"""Settings for the model registry, all read from the environment.

Every variable read here is listed, with its default, in the README's "Configuration" table.
"""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (true/false/1/0), got {raw!r}")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from None


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


VAR_DIR = Path(env_str("REGISTRY_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", False)


def _secret_key() -> str:
    """SECRET_KEY from the environment, else the one kept in var/secret_key (`make run` writes it there, so
    `manage.py` commands run by hand after `make run` use the same key), else, with DEBUG on only, a new one kept
    there. With DEBUG off and neither, the start stops: production must not run on a key nobody chose."""
    key = env_str("SECRET_KEY")
    if key:
        return key
    path = VAR_DIR / "secret_key"
    try:
        key = path.read_text().strip()
    except FileNotFoundError:
        key = ""
    if key:
        return key
    if not DEBUG:
        raise ImproperlyConfigured(
            f"SECRET_KEY must be set when DEBUG is off and {path} holds none (`make run` keeps one there); "
            "for local development set DEBUG=true to have one generated."
        )
    # Local development: generate once and keep it under var/ so sessions survive restarts.
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(50)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        # Another process wrote it first (or an empty file is there): use what it holds, or fill the empty file.
        existing = path.read_text().strip()
        if existing:
            return existing
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key


SECRET_KEY = _secret_key()

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    # Before django.contrib.auth: its createsuperuser and changepassword take the place of Django's (the first app
    # to name a command wins), to write through the accounts services, which audit them.
    "registry.accounts",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "template_partials",
    "django_htmx",
    "csp",
    "ninja",
    "axes",
    "registry.audit",
    "registry.tracking",
    "registry.catalog",
    "registry.governance",
    "registry.scanning",
    "registry.demo",
    "registry.mlflow_compat",
    "registry.web",
]

MIDDLEWARE = [
    "registry.middleware.DrainUnreadBody",
    "registry.middleware.RequestIdAndTiming",
    "django.middleware.security.SecurityMiddleware",
    "registry.middleware.RefuseNulCharacters",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Every page needs a signed-in user unless its view says @login_not_required (login, health, the JSON API).
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "registry.api.middleware.JsonOnlyMiddleware",
    "registry.middleware.DomainErrorPages",
    # Turns a sign-in refused for too many failures into registry.lockout's 429 (last, so it sees every response).
    "axes.middleware.AxesMiddleware",
]

# --- Content-Security-Policy (django-csp) ---------------------------------------------------------------------------
# Scripts and styles come only from our own static files: no inline script, no eval, no other origin (the product runs
# air-gapped). Plotly's stylesheet is a static file (static/vendor/plotly.css, linked so Plotly injects no <style>);
# Plotly, Swagger UI and Django's admin set style attributes in their markup, so style-src-attr allows those and
# nothing else inline. Images may be data: URLs (Plotly's mode bar icons, the admin's).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "style-src-attr": ["'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}

ROOT_URLCONF = "registry.urls"
WSGI_APPLICATION = "registry.wsgi.application"
ASGI_APPLICATION = "registry.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------------------------------
# SQLite by default: WAL so readers never block the writer, IMMEDIATE transactions so two writers queue on the
# busy timeout instead of failing with "database is locked" halfway through a transaction.
SQLITE_PATH = VAR_DIR / "registry.sqlite3"
DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{SQLITE_PATH}")
# Connections are kept between requests (opening SQLite runs the PRAGMAs below; PostgreSQL pays a handshake).
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 600), conn_health_checks=True
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    if DATABASES["default"]["NAME"] not in ("", ":memory:"):
        Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": env_int("SQLITE_BUSY_TIMEOUT", 30),
        "init_command": (
            "PRAGMA journal_mode=WAL;"
            "PRAGMA synchronous=NORMAL;"
            "PRAGMA foreign_keys=ON;"
            "PRAGMA cache_size=-65536;"
            "PRAGMA mmap_size=268435456;"
            "PRAGMA temp_store=MEMORY;"
        ),
    }
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-registry.sqlite3")}
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Django's backend, reading datetimes with psycopg's compiled loader (see registry/postgresql/base.py).
    DATABASES["default"]["ENGINE"] = "registry.postgresql"
    # PostgreSQL: parameters are sent apart from the statement text (server-side binding), so the same statement text
    # repeats and psycopg prepares it on a connection after DB_PREPARE_THRESHOLD executions. PostgreSQL then skips
    # parsing and planning: a registration's dozen statements went from 8.1 to 5.7 ms in-process on a slow CPU.
    # Behind PgBouncer in transaction mode older than 1.21 (no max_prepared_statements), set DB_PREPARE_THRESHOLD=off.
    prepare_threshold = env_str("DB_PREPARE_THRESHOLD", "5").strip()
    if prepare_threshold.lower() not in {"off", "none"} and not prepare_threshold.isdigit():
        raise ImproperlyConfigured(
            f"DB_PREPARE_THRESHOLD must be a number of executions or 'off', got {prepare_threshold!r}"
        )
    DATABASES["default"]["OPTIONS"] = {
        **DATABASES["default"].get("OPTIONS", {}),
        "server_side_binding": env_bool("DB_SERVER_SIDE_BINDING", True),
        "prepare_threshold": int(prepare_threshold) if prepare_threshold.isdigit() else None,
    }

# PostgreSQL: metric batches may commit without waiting for their WAL flush (synchronous_commit off for those
# transactions only), as SQLite's synchronous=NORMAL does above for every commit. A crash of the database server can
# lose the last fraction of a second of acknowledged points; registrations, approvals and the audit log always wait.
METRICS_ASYNC_COMMIT = env_bool("METRICS_ASYNC_COMMIT", False)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

# --- Static files and artifacts -------------------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]

ARTIFACTS_ROOT = Path(env_str("ARTIFACTS_ROOT", str(VAR_DIR / "artifacts")))
ARTIFACTS_S3_BUCKET = env_str("ARTIFACTS_S3_BUCKET")


def _s3_transfer_config():
    """Uploads streamed through an app server go to S3 in 8 MB parts, at most 3 held in memory at once (boto3's
    default of 10 grew a worker by ~100 MB during a large upload; benchmarks/transfers.py --proxied)."""
    from boto3.s3.transfer import TransferConfig

    config = TransferConfig(multipart_chunksize=8 * 1024 * 1024, max_concurrency=3)
    config.max_in_memory_upload_chunks = 3
    return config


if ARTIFACTS_S3_BUCKET:
    _artifact_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": ARTIFACTS_S3_BUCKET,
            "location": env_str("ARTIFACTS_S3_PREFIX", ""),
            "endpoint_url": env_str("AWS_S3_ENDPOINT_URL") or None,
            "region_name": env_str("AWS_S3_REGION_NAME") or None,
            "access_key": env_str("AWS_ACCESS_KEY_ID") or None,
            "secret_key": env_str("AWS_SECRET_ACCESS_KEY") or None,
            "default_acl": None,
            "file_overwrite": True,
            "querystring_auth": True,
            "transfer_config": _s3_transfer_config(),
        },
    }
else:
    _artifact_storage = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(ARTIFACTS_ROOT), "base_url": None, "allow_overwrite": True},
    }

STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": env_str("STATICFILES_BACKEND", "whitenoise.storage.CompressedManifestStaticFilesStorage"),
    },
    "artifacts": _artifact_storage,
}

# Direct transfers between clients and the bucket (S3 storage only; clients must be able to reach the bucket's
# endpoint). Downloads answer with a redirect to a short-lived presigned URL; uploads above the client's threshold go
# as multipart parts to presigned part URLs and are completed (hashed, recorded) through the API.
ARTIFACTS_S3_PRESIGNED_DOWNLOADS = env_bool("ARTIFACTS_S3_PRESIGNED_DOWNLOADS", False)
ARTIFACTS_S3_PRESIGNED_EXPIRY = env_int("ARTIFACTS_S3_PRESIGNED_EXPIRY", 60)
ARTIFACTS_S3_MULTIPART_UPLOADS = env_bool("ARTIFACTS_S3_MULTIPART_UPLOADS", False)
ARTIFACTS_S3_UPLOAD_EXPIRY = env_int("ARTIFACTS_S3_UPLOAD_EXPIRY", 6 * 3600)
# Where clients reach the bucket, when that differs from AWS_S3_ENDPOINT_URL (the app servers' address for it).
ARTIFACTS_S3_PUBLIC_ENDPOINT_URL = env_str("ARTIFACTS_S3_PUBLIC_ENDPOINT_URL")

# Largest artifact accepted in one upload, in bytes (default 5 GiB).
ARTIFACT_MAX_UPLOAD_BYTES = env_int("ARTIFACT_MAX_UPLOAD_BYTES", 5 * 1024**3)

# Largest JSON request body (batches of 10,000 metric points are about 1 MB).
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("API_MAX_JSON_BYTES", 32 * 1024**2)

# --- Access ---------------------------------------------------------------------------------------------------------
# The level of signed-in users on models and experiments that hold no grant for them and set no level of their own:
# READ (everyone sees everything, only owners and grantees change it) or NONE (a private registry: nothing is visible
# without a grant). EDIT opens every model and experiment to every signed-in user's changes.
_DEFAULT_PERMISSIONS = {"NONE": 0, "NO_PERMISSIONS": 0, "READ": 1, "EDIT": 2}
_default_permission = env_str("REGISTRY_DEFAULT_PERMISSION", "READ").strip().upper()
if _default_permission not in _DEFAULT_PERMISSIONS:
    raise ImproperlyConfigured(f"REGISTRY_DEFAULT_PERMISSION must be NONE, READ or EDIT, got {_default_permission!r}")
REGISTRY_DEFAULT_PERMISSION = _DEFAULT_PERMISSIONS[_default_permission]

# Webhook targets on private, loopback or link-local addresses are refused at connection time unless this is on.
WEBHOOKS_ALLOW_PRIVATE_TARGETS = env_bool("WEBHOOKS_ALLOW_PRIVATE_TARGETS", False)
WEBHOOK_TIMEOUT_SECONDS = env_int("WEBHOOK_TIMEOUT_SECONDS", 10)
WEBHOOK_MAX_ATTEMPTS = env_int("WEBHOOK_MAX_ATTEMPTS", 8)

# --- Sign-in throttling (django-axes) -------------------------------------------------------------------------------
# Wrong passwords (dashboard and admin login, HTTP basic on the MLflow API) count per (username, address); wrong API
# tokens per address. At the limit the next attempts answer 429 until the cool-off ends or an administrator lifts it
# (`manage.py axes_reset`, `axes_reset_ip`, `axes_reset_username`, or the admin's Axes pages).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # refuses a locked-out caller before the password is checked
    "django.contrib.auth.backends.ModelBackend",
]
AXES_ENABLED = env_bool("LOGIN_THROTTLE", True)
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 10)
_cool_off_minutes = env_int("LOGIN_COOLOFF_MINUTES", 15)
# 0 minutes: a lockout lasts until an administrator lifts it.
AXES_COOLOFF_TIME = timedelta(minutes=_cool_off_minutes) if _cool_off_minutes > 0 else None
AXES_LOCKOUT_PARAMETERS = "registry.accounts.throttle.lockout_parameters"
AXES_CLIENT_IP_CALLABLE = "registry.accounts.throttle.client_ip"
AXES_LOCKOUT_CALLABLE = "registry.lockout.lockout_response"
# A success clears that (username, address)'s failures; attempts during a lockout do not extend it.
AXES_RESET_ON_SUCCESS = True
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_VERBOSE = False
# Behind N trusted reverse proxies, the client address is the N-th from the right of X-Forwarded-For.
LOGIN_THROTTLE_PROXY_COUNT = env_int("LOGIN_THROTTLE_PROXY_COUNT", 0)

# --- Single sign-on (OpenID Connect, mozilla-django-oidc) -----------------------------------------------------------
# Off unless OIDC_RP_CLIENT_ID is set. The variables keep the library's own names; the endpoints are the ones the
# provider's /.well-known/openid-configuration lists. Local accounts and API tokens keep working beside it.
OIDC_RP_CLIENT_ID = env_str("OIDC_RP_CLIENT_ID")
SSO_ENABLED = bool(OIDC_RP_CLIENT_ID)
OIDC_RP_CLIENT_SECRET = env_str("OIDC_RP_CLIENT_SECRET")
# Either the issuer (its discovery document names the endpoints) or the four endpoints.
OIDC_OP_ISSUER = env_str("OIDC_OP_ISSUER")
OIDC_OP_AUTHORIZATION_ENDPOINT = env_str("OIDC_OP_AUTHORIZATION_ENDPOINT")
OIDC_OP_TOKEN_ENDPOINT = env_str("OIDC_OP_TOKEN_ENDPOINT")
OIDC_OP_USER_ENDPOINT = env_str("OIDC_OP_USER_ENDPOINT")
OIDC_OP_JWKS_ENDPOINT = env_str("OIDC_OP_JWKS_ENDPOINT")
OIDC_RP_SIGN_ALGO = env_str("OIDC_RP_SIGN_ALGO", "RS256")
OIDC_RP_SCOPES = env_str("OIDC_RP_SCOPES", "openid email profile groups")
OIDC_USE_PKCE = env_bool("OIDC_USE_PKCE", True)
OIDC_TIMEOUT = env_int("OIDC_TIMEOUT", 10)
LOGIN_REDIRECT_URL_FAILURE = "/login/?sso=failed"
# Ours: the button's label, the claims that name the user and their teams, and what to do with unknown teams.
OIDC_PROVIDER_NAME = env_str("OIDC_PROVIDER_NAME", "single sign-on")
OIDC_USERNAME_CLAIM = env_str("OIDC_USERNAME_CLAIM", "preferred_username")
OIDC_GROUPS_CLAIM = env_str("OIDC_GROUPS_CLAIM", "groups")
OIDC_CREATE_GROUPS = env_bool("OIDC_CREATE_GROUPS", True)
# An existing account with a local password is only signed into through the provider when this is on (otherwise a
# provider user who picks the name `admin` would become the local administrator).
OIDC_LINK_LOCAL_ACCOUNTS = env_bool("OIDC_LINK_LOCAL_ACCOUNTS", False)
AUTHENTICATION_BACKENDS = [*AUTHENTICATION_BACKENDS, "registry.accounts.sso.Backend"]
# File safety scan (registry/scanning): files up to this size are scanned when their upload commits, larger ones
# in the background: by a thread of the serving process ("thread") or by `manage.py scan_worker --loop` ("worker").
SCAN_SYNC_MAX_BYTES = env_int("SCAN_SYNC_MAX_BYTES", 16 * 1024 * 1024)
SCAN_BACKGROUND = env_str("SCAN_BACKGROUND", "thread")
SCAN_TIMEOUT_SECONDS = env_int("SCAN_TIMEOUT_SECONDS", 300)
# Reviewed additions to the pickle allowlist (registry/lib/scan_allowlist.py): "package.module:Class,other:func".
SCAN_EXTRA_ALLOWED_GLOBALS = env_str("SCAN_EXTRA_ALLOWED_GLOBALS", "")

# --- Security -------------------------------------------------------------------------------------------------------
# Behind TLS (the production default) cookies are secure and HSTS is on; set REGISTRY_HTTPS=false to serve plain
# HTTP on a trusted network, as `make run` does.
HTTPS = env_bool("REGISTRY_HTTPS", not DEBUG)
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", HTTPS)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000 if HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS
if env_bool("SECURE_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True

# --- Operations -----------------------------------------------------------------------------------------------------
# Logs: plain text by default; REGISTRY_LOG_FORMAT=json writes one JSON object per line. Either way each line carries
# the id of the request it was written for (X-Request-ID, see registry.middleware.RequestIdAndTiming).
LOG_FORMAT = env_str("REGISTRY_LOG_FORMAT", "text").strip().lower()
if LOG_FORMAT not in ("text", "json"):
    raise ImproperlyConfigured(f"REGISTRY_LOG_FORMAT must be text or json, got {LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "registry.lib.logs.RequestIdFilter"}},
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        "json": {"()": "registry.lib.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["request_id"]},
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}

# Prometheus metrics at /metrics: off unless REGISTRY_METRICS is on; with REGISTRY_METRICS_TOKEN the scraper sends it
# as a bearer token. With several gunicorn workers set PROMETHEUS_MULTIPROC_DIR (an empty folder on a tmpfs, one per
# server) so a scrape adds up every worker (registry.lib.metrics).
REGISTRY_METRICS = env_bool("REGISTRY_METRICS", False)
REGISTRY_METRICS_TOKEN = env_str("REGISTRY_METRICS_TOKEN")
PROMETHEUS_MULTIPROC_DIR = env_str("PROMETHEUS_MULTIPROC_DIR")

STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
]
