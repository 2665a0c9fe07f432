"""Settings, all from the environment.

With nothing set, the product runs on the embedded default: a SQLite file under var/, the in-memory
channel layer, Celery tasks run eagerly in-process and an in-process scheduler for periodic work.
With DATABASE_URL and REDIS_URL it runs on the real stack: PostgreSQL, channels-redis, Celery on Redis
with django-celery-beat, and the Redis cache. DJANGO_ENV=production refuses to start without a real
SECRET_KEY and ALLOWED_HOSTS.
"""

import os
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import environ
from celery.schedules import crontab
from csp.constants import NONCE, NONE, SELF
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
if (BASE_DIR / ".env").exists() and not env.bool("O2O_IGNORE_DOTENV", default=False):
    environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DJANGO_ENV = env.str("DJANGO_ENV", default="development")
PRODUCTION = DJANGO_ENV == "production"
DEBUG = env.bool("DEBUG", default=False)

_INSECURE_KEY = "insecure-development-key-never-use-in-production"
SECRET_KEY = env.str("SECRET_KEY", default=_INSECURE_KEY)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[] if PRODUCTION else ["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

if PRODUCTION:
    # The same bar as Django's own deploy check (security.W009).
    if (
        SECRET_KEY == _INSECURE_KEY
        or len(SECRET_KEY) < 50
        or len(set(SECRET_KEY)) < 5
        or SECRET_KEY.startswith("django-insecure-")
    ):
        raise ImproperlyConfigured(
            "DJANGO_ENV=production needs a real SECRET_KEY (50+ characters)."
        )
    if not ALLOWED_HOSTS:
        raise ImproperlyConfigured("DJANGO_ENV=production needs ALLOWED_HOSTS.")
    if DEBUG:
        raise ImproperlyConfigured("DEBUG must be off in production.")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "django_celery_beat",
    "axes",
    "csp",
    "o2o",
    "o2o.accounts",
    "customers",
    "vendors",
    "tracking",
    "orders",
    "payments",
    "payments.sandbox",
    "partners",
    "subscriptions",
    "counter",
    "insights",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    # WhiteNoise, able to run on the event loop (o2o.staticfiles): every middleware here can.
    "o2o.staticfiles.StaticFilesMiddleware",
    # Pages (text/html) gzipped for browsers that ask; after WhiteNoise, before anything that
    # writes the body (o2o.compression).
    "o2o.compression.PageGZipMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: turns a locked-out sign-in into its answer (o2o.accounts.throttle).
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "o2o.urls"
ASGI_APPLICATION = "o2o.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "o2o.context_processors.roles",
            ],
            "libraries": {"money": "o2o.money_tags"},
        },
    },
]

# --- Database ---------------------------------------------------------------------------------
VAR_DIR.mkdir(exist_ok=True)
DATABASE_URL = env.str("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")
DATABASES = {"default": env.db_url_config(DATABASE_URL)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL + IMMEDIATE transactions let the demo's web, scheduler and simulator threads share the file.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
else:
    # 0 under ASGI (Django's advice): each request runs in its own thread, and persistent
    # connections would pile up one per thread until PostgreSQL refuses more. Put a pooler
    # (PgBouncer) in front for reuse.
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=0))
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    # Behind PgBouncer in transaction mode: QuerySet.iterator() outside a transaction opens a
    # cursor WITH HOLD and fetches from it in later statements, which PgBouncer may send to another
    # server connection. True reads such querysets whole instead (README, "Running it for a city").
    DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = env.bool(
        "DB_DISABLE_SERVER_SIDE_CURSORS", default=False
    )
EMBEDDED = DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3"
if PRODUCTION and EMBEDDED:
    raise ImproperlyConfigured("DJANGO_ENV=production needs DATABASE_URL (PostgreSQL).")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: cache, channel layer, Celery ------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            # Falls through when Redis does not answer (o2o/cache.py): a miss, never a 500. Short
            # timeouts, so a Redis that hangs costs a request at most half a second.
            "BACKEND": "o2o.cache.ResilientRedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env.str("CACHE_PREFIX", default="o2o"),
            "OPTIONS": {
                "socket_connect_timeout": env.float("CACHE_CONNECT_TIMEOUT", default=0.25),
                "socket_timeout": env.float("CACHE_SOCKET_TIMEOUT", default=0.5),
            },
        }
    }
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                # redis-py 8 times reads out after 5 s by default, exactly channels-redis's own
                # 5 s receive wait: a quiet socket would crash (django/channels_redis#422).
                "hosts": [{"address": REDIS_URL, "socket_timeout": 30}],
                "prefix": env.str("CHANNELS_PREFIX", default="o2o"),
                # A map socket in a busy area gets many deltas; the default 100 would drop them.
                "capacity": env.int("CHANNELS_CAPACITY", default=1000),
            },
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=not REDIS_URL)
CELERY_TASK_EAGER_PROPAGATES = True
# At least once: a task is acknowledged only after it ran, and a worker that dies mid-task puts it
# back on the queue (reject_on_worker_lost) instead of losing it. Every task is idempotent; the
# money is moved by durable effects (o2o.effects), so even a lost message only delays the sweep.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=300)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=360)
# Redis redelivers an unacknowledged message after the visibility timeout: longer than the
# longest task (the hard time limit), short enough that a lost worker's message comes back soon.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=900),
    "socket_timeout": 5,
    "socket_connect_timeout": 5,
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Queues: money (captures, voids, refunds, payouts: one worker pool, prefetch 1), notifications
# (e-mails, partner webhooks, live updates), bulk (settlement, reconciliation, purges). Effects
# choose their queue by kind (o2o.effects); tasks by these routes.
CELERY_TASK_DEFAULT_QUEUE = "bulk"
CELERY_TASK_ROUTES = {
    "payments.tasks.payout_send": {"queue": "money"},
    "payments.tasks.refunds_resend": {"queue": "money"},
    "payments.tasks.payouts_sync": {"queue": "money"},
    "orders.tasks.*": {"queue": "money"},
    "o2o.tasks.effects_sweep": {"queue": "money"},
    "tracking.tasks.*": {"queue": "notifications"},
    "payments.sandbox.tasks.*": {"queue": "notifications"},
}
CELERY_TIMEZONE = "Asia/Seoul"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# One schedule for both worlds: django-celery-beat reads it on the real stack, the in-process
# scheduler (o2o.scheduler) runs it in the embedded demo. Entries are added by later features.
RECONCILIATION_AT = env.str("RECONCILIATION_AT", default="04:00")  # nightly, local time
try:
    _RECONCILE_H, _RECONCILE_M = (int(part) for part in RECONCILIATION_AT.split(":"))
    if not (0 <= _RECONCILE_H < 24 and 0 <= _RECONCILE_M < 60):
        raise ValueError(RECONCILIATION_AT)
except ValueError as exc:
    raise ImproperlyConfigured(
        f"RECONCILIATION_AT must be HH:MM, not {RECONCILIATION_AT!r}"
    ) from exc
# Regulars: the hour (Korea time) of the evening notice of tomorrow's deliveries, and of the
# morning run that orders and charges the day's deliveries.
SUBSCRIPTION_NOTICE_HOUR = env.int("SUBSCRIPTION_NOTICE_HOUR", default=19)
SUBSCRIPTION_ORDER_HOUR = env.int("SUBSCRIPTION_ORDER_HOUR", default=5)
if not (0 <= SUBSCRIPTION_NOTICE_HOUR < 24 and 0 <= SUBSCRIPTION_ORDER_HOUR < 24):
    raise ImproperlyConfigured("SUBSCRIPTION_NOTICE_HOUR and SUBSCRIPTION_ORDER_HOUR are 0-23")
CELERY_BEAT_SCHEDULE: dict[str, dict] = {
    # Durable effects due (a lost kick, a retry's time come, a killed worker's lease run out),
    # and orders and payments that disagree driven to the right state.
    "effects-sweep": {"task": "o2o.tasks.effects_sweep", "schedule": 5.0},
    "orders-converge": {"task": "orders.tasks.orders_converge", "schedule": 60.0},
    "insights-refresh": {"task": "insights.tasks.summaries_refresh", "schedule": 60.0},
    "insights-peers-warm": {"task": "insights.tasks.peers_warm", "schedule": 1800.0},
    "effects-purge": {"task": "o2o.tasks.effects_purge", "schedule": 86400.0},
    "sessions-purge-expired": {"task": "o2o.tasks.sessions_purge_expired", "schedule": 3600.0},
    "presence-sweep": {"task": "tracking.tasks.presence_sweep", "schedule": 30.0},
    # A vendor's next public cell, when its time came without a ping to show it.
    "public-cells-publish-due": {
        "task": "tracking.tasks.public_cells_publish_due",
        "schedule": 10.0,
    },
    "pings-purge-old": {"task": "tracking.tasks.pings_purge_old", "schedule": 3600.0},
    # Customers who asked to be told when a favourite cart is near (at most once per shift).
    "favourites-near-notify": {
        "task": "tracking.tasks.favourites_near_notify",
        "schedule": 60.0,
    },
    "orders-expire": {"task": "orders.tasks.orders_expire", "schedule": 30.0},
    "sandbox-webhooks-deliver": {
        "task": "payments.sandbox.tasks.sandbox_webhooks_deliver",
        "schedule": 5.0,
    },
    # Settle every vendor's last finished period (idempotent: a no-op once done), release held
    # settlements and send their payouts; fetch the final state of payouts in transit.
    "settlements-run": {"task": "payments.tasks.settlements_run", "schedule": 900.0},
    "payouts-sync": {"task": "payments.tasks.payouts_sync", "schedule": 600.0},
    "refunds-resend": {"task": "payments.tasks.refunds_resend", "schedule": 300.0},
    "short-refunds-retry": {"task": "orders.tasks.orders_short_refunds_retry", "schedule": 600.0},
    # Ledger against payments and the provider's records, for the last finished day: nightly, at
    # RECONCILIATION_AT (local time, CELERY_TIMEZONE), after the day's settlement.
    "reconciliation-run": {
        "task": "payments.tasks.reconciliation_run",
        "schedule": crontab(hour=_RECONCILE_H, minute=_RECONCILE_M),
    },
    "orders-reconcile": {
        "task": "orders.tasks.orders_reconcile",
        "schedule": crontab(hour=_RECONCILE_H, minute=_RECONCILE_M),
    },
    # Regulars (subscriptions/delivery.py), Korea time: tomorrow's deliveries and their notices in
    # the evening; today's orders and charges from the morning hour, a bounded batch every 5
    # minutes for that hour; the completeness check late at night.
    "subscription-deliveries-prepare": {
        "task": "subscriptions.tasks.deliveries_prepare",
        "schedule": crontab(hour=SUBSCRIPTION_NOTICE_HOUR, minute=0),
    },
    "subscription-deliveries-place": {
        "task": "subscriptions.tasks.deliveries_place",
        "schedule": crontab(hour=SUBSCRIPTION_ORDER_HOUR, minute="*/5"),
    },
    "subscription-deliveries-check": {
        "task": "subscriptions.tasks.deliveries_check",
        "schedule": crontab(hour=23, minute=40),
    },
}
# The in-process scheduler runs only when tasks are eager (no broker to hand them to).
INPROCESS_SCHEDULER = env.bool("INPROCESS_SCHEDULER", default=CELERY_TASK_ALWAYS_EAGER)

# --- Auth ---------------------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "home"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- Limits on guessing (o2o/accounts/throttle.py) ---------------------------------------------
# Sign-in (login page, admin, token API): django-axes counts failures in the database, per account
# and per client address; at AXES_FAILURE_LIMIT failures either is locked for AXES_COOLOFF_MINUTES
# (every further failure restarts the wait), even with the right password.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=10)
AXES_COOLOFF_TIME = timedelta(minutes=env.float("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_USERNAME_CALLABLE = "o2o.accounts.throttle.attempted_email"
AXES_CLIENT_IP_CALLABLE = "o2o.accounts.throttle.client_address"
AXES_LOCKOUT_CALLABLE = "o2o.accounts.throttle.lockout_response"
AXES_DISABLE_ACCESS_LOG = True  # failures are kept; successful logins are not logged again here
# Password reset and signup (each post sends an e-mail or creates an account): posts per address
# and per e-mail address in a window of FORM_LIMIT_WINDOW_S, counted in the cache.
FORM_LIMIT_WINDOW_S = env.int("FORM_LIMIT_WINDOW_S", default=3600)
FORM_LIMITS = {
    "password_reset": {
        "address": env.int("PASSWORD_RESET_LIMIT_PER_ADDRESS", default=20),
        "account": env.int("PASSWORD_RESET_LIMIT_PER_ACCOUNT", default=5),
    },
    "signup": {
        "address": env.int("SIGNUP_LIMIT_PER_ADDRESS", default=10),
        "account": env.int("SIGNUP_LIMIT_PER_ACCOUNT", default=5),
    },
}

EMAIL_BACKEND = env.str(
    "EMAIL_BACKEND",
    default="django.core.mail.backends.smtp.EmailBackend"
    if PRODUCTION
    else "django.core.mail.backends.console.EmailBackend",
)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="noreply@o2o.localhost")
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)

# --- i18n ---------------------------------------------------------------------------------------
LANGUAGE_CODE = "ko"
LANGUAGES = [("ko", _("Korean")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Asia/Seoul"
# One long and one short form of dates per language (o2o/formats/<lang>/formats.py).
FORMAT_MODULE_PATH = ["o2o.formats"]
USE_I18N = True
USE_TZ = True

# --- Static and media ---------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=str(VAR_DIR / "static"))
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "media/"
MEDIA_ROOT = env.path("MEDIA_ROOT", default=str(VAR_DIR / "media"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = not PRODUCTION
if not PRODUCTION:
    Path(STATIC_ROOT).mkdir(parents=True, exist_ok=True)

# --- Security -----------------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # the small JS on stock pages reads it for fetch()
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    # Plain HTTP inside the deployment: the load balancer's health check, and the worker calling
    # the sandbox gateway and its webhooks on the web container.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^sandbox/api/", r"^payments/webhooks/"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

# --- REST API -----------------------------------------------------------------------------------
REST_FRAMEWORK = {
    # Token first: its WWW-Authenticate header makes a missing or bad token a 401, not a 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticatedOrReadOnly"],
    "DEFAULT_PAGINATION_CLASS": "o2o.api.Pagination",
    "PAGE_SIZE": 20,
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env.str("THROTTLE_ANON", default="120/min"),
        "user": env.str("THROTTLE_USER", default="600/min"),
    },
    # How many proxies in front add to X-Forwarded-For: clients are told apart by the address
    # the nearest trusted proxy saw, not by a header anyone can write (throttling).
    "NUM_PROXIES": env.int("NUM_PROXIES", default=0),
    "EXCEPTION_HANDLER": "o2o.api.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"]
    + (["rest_framework.renderers.BrowsableAPIRenderer"] if DEBUG else []),
}
SPECTACULAR_SETTINGS = {
    "TITLE": "O2O mobile-vendor marketplace API",
    "DESCRIPTION": "Everything a customer or vendor page does, for native apps and partners.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Several models have a `status` with different choices: name each set (no W001 collision).
    "ENUM_NAME_OVERRIDES": {
        "PartnerDeliveryStatusEnum": "partners.models.Delivery.Status",
        "OrderStatusEnum": "orders.models.Status",
    },
    # The one error format on every operation, and the statement downloads (o2o/api.py).
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "o2o.api.schema_postprocess",
    ],
}

# --- Domain -------------------------------------------------------------------------------------
CURRENCY = "KRW"
# H3 resolutions: service areas and the public (approximate) position use PUBLIC_CELL_RES.
PUBLIC_CELL_RES = env.int("PUBLIC_CELL_RES", default=9)
# Insight (insights/): sales and misses are kept by public cell at INSIGHT_CELL_RES (never finer
# than the public one); a figure about fewer than INSIGHT_MIN_BUYERS distinct buyers is merged
# into a coarser area or hidden, and carts are compared in groups of at least
# INSIGHT_MIN_PEERS.
INSIGHT_CELL_RES = min(env.int("INSIGHT_CELL_RES", default=9), PUBLIC_CELL_RES)
INSIGHT_MIN_BUYERS = max(env.int("INSIGHT_MIN_BUYERS", default=3), 2)
INSIGHT_MIN_PEERS = max(env.int("INSIGHT_MIN_PEERS", default=5), 3)
SERVICE_AREA_RES = env.int("SERVICE_AREA_RES", default=8)
# Live map: map sockets subscribe to groups of cells at MAP_GROUP_RES covering their viewport.
MAP_GROUP_RES = env.int("MAP_GROUP_RES", default=7)
MAP_MAX_GROUPS = env.int("MAP_MAX_GROUPS", default=60)
# Map sockets get their cells' deltas in one message every MAP_FLUSH_MS, coalesced per vendor.
MAP_FLUSH_MS = env.int("MAP_FLUSH_MS", default=100)
# Admission control per server process (o2o.admission): page and API requests inside Django at
# once, more waiting at most WEB_QUEUE_WAIT_S each; beyond, a fast 503 + Retry-After. 0: no limit.
WEB_MAX_IN_FLIGHT = env.int("WEB_MAX_IN_FLIGHT", default=16)
WEB_MAX_QUEUED = env.int("WEB_MAX_QUEUED", default=128)
WEB_QUEUE_WAIT_S = env.float("WEB_QUEUE_WAIT_S", default=5.0)
# Pings waiting to be recorded in one server process beyond which a new ping is answered "send it
# again" at once (tracking.ingest): about a second of one process's recording (bench/README.md,
# the national fleet: 500 answered more pings, sooner, than 2,000 or no bound).
PING_INGEST_MAX_PENDING = env.int("PING_INGEST_MAX_PENDING", default=500)
# A stock change's live "N left" on the vendor page is read and sent once per cart per
# LIVE_COALESCE_S, off the thread that committed (o2o.batching; 0: at the commit, as the tests do).
LIVE_COALESCE_S = env.float("LIVE_COALESCE_S", default=0.1)
# Map sockets one client address may hold open at once, per server process (over it: 4429).
MAP_SOCKETS_PER_ADDRESS = env.int("MAP_SOCKETS_PER_ADDRESS", default=8)
# permessage-deflate on websockets (uvicorn's default is on). Off: compressing every map batch was
# most of the server's delivery time (bench/README.md); the batches are small JSON already.
WS_PER_MESSAGE_DEFLATE = env.bool("WS_PER_MESSAGE_DEFLATE", default=False)
# How long a stopping server (SIGTERM) waits for open connections and their tasks before it
# cancels them (uvicorn's timeout_graceful_shutdown; manage.py serve, the Dockerfile, compose):
# without it one stuck socket task keeps the process at "Waiting for background tasks" for ever.
SHUTDOWN_TIMEOUT_S = env.int("SHUTDOWN_TIMEOUT_S", default=10)
MAP_TILE_URL = env.str("MAP_TILE_URL", default="https://tile.openstreetmap.org/{z}/{x}/{y}.png")
MAP_TILE_ATTRIBUTION = env.str("MAP_TILE_ATTRIBUTION", default="&copy; OpenStreetMap contributors")
# Favourite carts: "tell me when it is near" means the cart's public cell centre within this many
# metres of one of the customer's saved addresses (customers.services.favourites_near_notify).
FAVOURITE_NEAR_M = env.int("FAVOURITE_NEAR_M", default=700)
# Favourites the near sweep looks at per run (beat runs it every minute; the rest wait a minute).
FAVOURITE_NEAR_BATCH = env.int("FAVOURITE_NEAR_BATCH", default=500)
O2O_GEOCODER = env.str("O2O_GEOCODER", default=None)  # dotted path (customers.geocoding); none
# Pings: what record_ping accepts.
PING_MAX_ACCURACY_M = env.float("PING_MAX_ACCURACY_M", default=150.0)
PING_MAX_FUTURE_S = env.int("PING_MAX_FUTURE_S", default=30)
PING_MAX_AGE_S = env.int("PING_MAX_AGE_S", default=3600)
PING_MAX_SPEED_MPS = env.float("PING_MAX_SPEED_MPS", default=25.0)
PING_MIN_INTERVAL_S = env.float("PING_MIN_INTERVAL_S", default=1.0)
PING_HISTORY_DAYS = env.int("PING_HISTORY_DAYS", default=7)
# Presence: standing within STATIONARY_RADIUS_M for STATIONARY_AFTER_S is "standing still";
# no ping for STALE_AFTER_S is "stale", for OFFLINE_AFTER_S "offline"; a heartbeat re-broadcasts
# an unchanged vendor every HEARTBEAT_S so map clients know it is still there.
STATIONARY_RADIUS_M = env.float("STATIONARY_RADIUS_M", default=30.0)
# ... plus the fix's own accuracy, up to this much: a still phone's fixes wander that far.
STATIONARY_JITTER_M = env.float("STATIONARY_JITTER_M", default=50.0)
STATIONARY_AFTER_S = env.int("STATIONARY_AFTER_S", default=120)
STALE_AFTER_S = env.int("STALE_AFTER_S", default=120)
OFFLINE_AFTER_S = env.int("OFFLINE_AFTER_S", default=600)
HEARTBEAT_S = env.int("HEARTBEAT_S", default=60)
# The public cell follows a cart with hysteresis (README, "Live location and privacy"): another
# cell is published only after the fixes have stayed at least PUBLIC_CELL_MARGIN_M (or their
# accuracy, if more) inside it for PUBLIC_CELL_HOLD_S plus a random delay drawn from
# PUBLIC_CELL_DELAY_MIN_S..PUBLIC_CELL_DELAY_MAX_S. All zero: every fix's own cell, at once.
PUBLIC_CELL_MARGIN_M = env.float("PUBLIC_CELL_MARGIN_M", default=40.0)
PUBLIC_CELL_HOLD_S = env.float("PUBLIC_CELL_HOLD_S", default=30.0)
PUBLIC_CELL_DELAY_MIN_S = env.float("PUBLIC_CELL_DELAY_MIN_S", default=15.0)
PUBLIC_CELL_DELAY_MAX_S = env.float("PUBLIC_CELL_DELAY_MAX_S", default=90.0)
# A vendor's public "last seen" is rounded down to this step (seconds; 0: to the second).
PUBLIC_TIME_STEP_S = env.int("PUBLIC_TIME_STEP_S", default=60)
# Orders: the platform's default commission (basis points) snapshotted onto each order, how long
# a vendor has to accept, how long a checkout may wait for payment, the pickup hold time.
COMMISSION_DEFAULT_BPS = env.int("COMMISSION_DEFAULT_BPS", default=1000)
# Who keeps a delivery fee: "vendor" (it is part of the vendor's share, no commission on it) or
# "platform" (booked as the platform's delivery fee revenue).
DELIVERY_FEE_TO = env.str("DELIVERY_FEE_TO", default="vendor")
if DELIVERY_FEE_TO not in ("vendor", "platform"):
    raise ImproperlyConfigured("DELIVERY_FEE_TO is 'vendor' or 'platform'")
ORDER_ACCEPT_MINUTES = env.int("ORDER_ACCEPT_MINUTES", default=10)
ORDER_PAYMENT_MINUTES = env.int("ORDER_PAYMENT_MINUTES", default=15)
# Cold-chain lots: the expiry given to units put on a cart without one (the stock page's plain
# quantity, released units with no lot to go back to, rows that existed before lots), in days.
STOCK_DEFAULT_SHELF_DAYS = env.int("STOCK_DEFAULT_SHELF_DAYS", default=7)
# Hours after a soft-declined off-session charge (a saved card) at which it is tried again, one
# per retry; after the last, or after a hard decline, it is not tried again (payments.vault).
OFF_SESSION_RETRY_HOURS = env.list("OFF_SESSION_RETRY_HOURS", cast=int, default=[1, 6, 24])
# Orders and payments that disagree for longer than this are not "in flight" but stuck: the
# convergence sweep fixes them and reconciliation reports what it can't (seconds).
CONVERGE_GRACE_SECONDS = env.int("CONVERGE_GRACE_SECONDS", default=120)
EFFECTS_KEEP_DAYS = env.int("EFFECTS_KEEP_DAYS", default=7)  # done effects are kept this long
# Partner webhooks (partners/conf.py reads these; see there for what each means).
if "PARTNER_ALLOW_PRIVATE_URLS" in os.environ:
    PARTNER_ALLOW_PRIVATE_URLS = env.bool("PARTNER_ALLOW_PRIVATE_URLS")
PARTNER_DISABLE_AFTER_DAYS = env.float("PARTNER_DISABLE_AFTER_DAYS", default=5)
PARTNER_SECRET_OVERLAP_HOURS = env.float("PARTNER_SECRET_OVERLAP_HOURS", default=24)
PARTNER_HTTP_CONNECT_TIMEOUT = env.float("PARTNER_HTTP_CONNECT_TIMEOUT", default=2.0)
PARTNER_HTTP_TIMEOUT = env.float("PARTNER_HTTP_TIMEOUT", default=10.0)
PICKUP_HOLD_HOURS = env.int("PICKUP_HOLD_HOURS", default=24)
# The hand-over QR on a customer's order page (orders/services/handover_qr.py) is a signed link that
# stays good this many seconds after the page drew it; the page draws a fresh one on every visit.
HANDOVER_QR_MAX_AGE = env.int("HANDOVER_QR_MAX_AGE", default=24 * 3600)
ORDER_MAX_QUANTITY = env.int("ORDER_MAX_QUANTITY", default=20)
# Cash sales at the cart (issue 16): no commission unless CASH_COMMISSION (then the vendor owes it,
# netted at settlement through the ledger); a sale can be undone for CASH_UNDO_MINUTES.
CASH_COMMISSION = env.bool("CASH_COMMISSION", default=False)
CASH_UNDO_MINUTES = env.int("CASH_UNDO_MINUTES", default=5)
CASH_SALE_MAX_LINES = env.int("CASH_SALE_MAX_LINES", default=30)
MEET_MAX_RINGS = env.int("MEET_MAX_RINGS", default=3)  # meeting cell within N cells of the vendor
PICKUP_MAX_KM = env.float("PICKUP_MAX_KM", default=3.0)
# Ordering ahead from a cart that is off shift (vendors.selectors.Availability): the vendors'
# published hours, e.g. "mon-fri 07:00-19:00; sat 08:00-13:00" (Korea time; empty: none published,
# so an off-shift cart takes no orders), and how far ahead a window must start at least (minutes).
VENDOR_HOURS = env.str("VENDOR_HOURS", default="")
ORDER_AHEAD_MIN_MINUTES = env.int("ORDER_AHEAD_MIN_MINUTES", default=60)
# Meet orders: the customer of an accepted meet order sees the vendor at street level (snapped to
# a grid of ORDER_NEARBY_PRECISION_M) only while the vendor is within ORDER_NEARBY_RADIUS_M of the
# meeting point, from a fix at most ORDER_NEARBY_MAX_AGE_S old; the order page re-checks every
# ORDER_NEARBY_POLL_S seconds.
ORDER_NEARBY_RADIUS_M = env.int("ORDER_NEARBY_RADIUS_M", default=500)
ORDER_NEARBY_PRECISION_M = env.int("ORDER_NEARBY_PRECISION_M", default=15)
ORDER_NEARBY_MAX_AGE_S = env.int("ORDER_NEARBY_MAX_AGE_S", default=120)
ORDER_NEARBY_POLL_S = env.float("ORDER_NEARBY_POLL_S", default=5.0)

# --- Payments -----------------------------------------------------------------------------------
# The provider the platform talks to (payments/gateways/); "sandbox" is the test-mode gateway that
# ships with the project under /sandbox/. Toss Payments or Stripe plug in beside it later.
PAYMENT_GATEWAY = env.str("PAYMENT_GATEWAY", default="sandbox")
# Where providers reach the platform (the webhook URL handed to them with every intent).
PLATFORM_BASE_URL = env.str("PLATFORM_BASE_URL", default="http://127.0.0.1:8000")
# Every call to a provider: connect and read timeouts (seconds), extra attempts on a connection error
# (always with the same idempotency key), and how old a signed webhook may be.
PAYMENT_HTTP_CONNECT_TIMEOUT = env.float("PAYMENT_HTTP_CONNECT_TIMEOUT", default=2.0)
PAYMENT_HTTP_READ_TIMEOUT = env.float("PAYMENT_HTTP_READ_TIMEOUT", default=5.0)
PAYMENT_HTTP_RETRIES = env.int("PAYMENT_HTTP_RETRIES", default=2)
PAYMENT_WEBHOOK_TOLERANCE_SECONDS = env.int("PAYMENT_WEBHOOK_TOLERANCE_SECONDS", default=300)
# The sandbox gateway, mounted at /sandbox/ while SANDBOX_ENABLED. The platform calls it at
# SANDBOX_BASE_URL (by default this very server); the customer's browser opens its card page at
# SANDBOX_PUBLIC_URL (default: the host the API was called on). Its keys have development defaults;
# production has none, so there the sandbox refuses every call and the sandbox gateway refuses to
# run (ImproperlyConfigured on first use) until both are set, and the well-known development keys
# are refused outright.
_SANDBOX_DEV_SECRET_KEY = "sk_sandbox_development_only"
_SANDBOX_DEV_WEBHOOK_SECRET = "whsec_sandbox_development_only"
SANDBOX_ENABLED = env.bool("SANDBOX_ENABLED", default=PAYMENT_GATEWAY == "sandbox")
SANDBOX_BASE_URL = env.str("SANDBOX_BASE_URL", default="http://127.0.0.1:8000")
SANDBOX_PUBLIC_URL = env.str("SANDBOX_PUBLIC_URL", default="")
SANDBOX_SECRET_KEY = env.str(
    "SANDBOX_SECRET_KEY", default="" if PRODUCTION else _SANDBOX_DEV_SECRET_KEY
)
SANDBOX_WEBHOOK_SECRET = env.str(
    "SANDBOX_WEBHOOK_SECRET", default="" if PRODUCTION else _SANDBOX_DEV_WEBHOOK_SECRET
)
if PRODUCTION and {SANDBOX_SECRET_KEY, SANDBOX_WEBHOOK_SECRET} & {
    _SANDBOX_DEV_SECRET_KEY,
    _SANDBOX_DEV_WEBHOOK_SECRET,
}:
    raise ImproperlyConfigured("DJANGO_ENV=production must not use the sandbox's development keys.")
# What the sandbox charges per capture (kept on refunds, as card providers do): basis points of the
# amount, rounded half-up, plus a fixed part in minor units. The platform bears it.
SANDBOX_FEE_BPS = env.int("SANDBOX_FEE_BPS", default=250)
SANDBOX_FEE_FIXED = env.int("SANDBOX_FEE_FIXED", default=0)
# The slow test card (4000 0000 0000 0077) makes the next fetch of its intent take this long.
SANDBOX_SLOW_SECONDS = env.float("SANDBOX_SLOW_SECONDS", default=6.0)
# Share of delivered webhooks the sandbox sends once more, later (as real providers sometimes do).
SANDBOX_WEBHOOK_DUPLICATE_RATE = env.float("SANDBOX_WEBHOOK_DUPLICATE_RATE", default=0.2)
SANDBOX_WEBHOOK_MAX_ATTEMPTS = env.int("SANDBOX_WEBHOOK_MAX_ATTEMPTS", default=8)
SANDBOX_WEBHOOK_BACKOFF_SECONDS = env.float("SANDBOX_WEBHOOK_BACKOFF_SECONDS", default=5.0)
SANDBOX_WEBHOOK_TIMEOUT_SECONDS = env.float("SANDBOX_WEBHOOK_TIMEOUT_SECONDS", default=10.0)
# Settlement: one per vendor per period of SETTLEMENT_PERIOD_DAYS days, periods starting at local
# midnight in TIME_ZONE (weekly periods start on Mondays); built SETTLEMENT_BATCH_SIZE journal
# transactions at a time, SETTLEMENT_VENDOR_BATCH vendors at a time.
SETTLEMENT_PERIOD_DAYS = env.int("SETTLEMENT_PERIOD_DAYS", default=1)
SETTLEMENT_BATCH_SIZE = env.int("SETTLEMENT_BATCH_SIZE", default=2000)
SETTLEMENT_VENDOR_BATCH = env.int("SETTLEMENT_VENDOR_BATCH", default=200)
if SETTLEMENT_PERIOD_DAYS < 1 or SETTLEMENT_BATCH_SIZE < 1 or SETTLEMENT_VENDOR_BATCH < 1:
    raise ImproperlyConfigured("SETTLEMENT_* settings are whole numbers of 1 or more")
# How long after the capture a customer can report a problem with an order (a dispute).
DISPUTE_WINDOW_DAYS = env.int("DISPUTE_WINDOW_DAYS", default=7)

# --- Content-Security-Policy (django-csp) -------------------------------------------------------
# Nothing from elsewhere but the map tiles (MAP_TILE_URL's origin; its {s} subdomains as *);
# scripts only from our static files or with the response's nonce, inline <style> blocks with the
# nonce, no style="" attributes, no framing, forms post here only (the sandbox card page also to
# the shop it returns to: payments/sandbox/views.py).
_tile = urlsplit(MAP_TILE_URL)
_TILE_ORIGIN = f"{_tile.scheme}://{_tile.netloc.replace('{s}', '*')}" if _tile.netloc else None
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, NONCE],
        "img-src": [SELF, "data:"] + ([_TILE_ORIGIN] if _TILE_ORIGIN else []),
        # 'self' covers ws:/wss: to the same host in CSP3 browsers; Safari before 15.4 needs them.
        "connect-src": [SELF],
        "font-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
    }
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # httpx logs every request at INFO (the payment adapter and the sandbox's webhooks).
        "httpx": {"level": "WARNING"},
        # Eager tasks in the demo would log every run of the 30 s presence sweep.
        "celery.app.trace": {"level": "WARNING" if CELERY_TASK_ALWAYS_EAGER else "INFO"},
    },
}

# Subscriptions (issue 15): the plans a customer may choose. `months` is the commitment (0: cancel
# anytime), `discount_bps` the price advantage on each delivery's items, `cancel_fee_bps` the share
# of the remaining committed value charged when a commitment is cancelled early
# (subscriptions/services.py, subscription_cancel). SUBSCRIPTION_MAX_QUANTITY bounds one line.
SUBSCRIPTION_PLANS = {
    "anytime": {"months": 0, "discount_bps": 0, "cancel_fee_bps": 0},
    "commit_3m": {"months": 3, "discount_bps": 500, "cancel_fee_bps": 1000},
    "commit_6m": {"months": 6, "discount_bps": 1000, "cancel_fee_bps": 1000},
}
SUBSCRIPTION_MAX_QUANTITY = env.int("SUBSCRIPTION_MAX_QUANTITY", default=20)
# A wellbeing check asked for by someone close to a subscriber (subscriptions/wellbeing.py): how
# long the subscriber's link stays valid, and how many requests a subscriber or an asker gets a day.
WELLBEING_REQUEST_DAYS = env.int("WELLBEING_REQUEST_DAYS", default=14)
WELLBEING_REQUESTS_PER_DAY = env.int("WELLBEING_REQUESTS_PER_DAY", default=3)
# The cart's counter (counter/, issue 16): the cart's QR is remade every ROTATE seconds and accepted
# for MAX_AGE; scanning it lets the phone buy from that cart for PASS minutes; a walk-up order waits
# PAY minutes for its payment (then its stock goes back); a basket the vendor made is valid BASKET.
COUNTER_QR_ROTATE_SECONDS = env.int("COUNTER_QR_ROTATE_SECONDS", default=30)
COUNTER_QR_MAX_AGE = env.int("COUNTER_QR_MAX_AGE", default=90)
COUNTER_PASS_MINUTES = env.int("COUNTER_PASS_MINUTES", default=15)
COUNTER_PAY_MINUTES = env.int("COUNTER_PAY_MINUTES", default=5)
COUNTER_BASKET_MINUTES = env.int("COUNTER_BASKET_MINUTES", default=10)
