"""Settings for bench/page_weight.py's server: the application's own, with the static files as
production serves them (CompressedManifestStaticFilesStorage: hashed names, gzip alongside; no
finders), collected into STATIC_ROOT by the bench first. Everything else as in development."""

from o2o.settings import *  # noqa: F403
from o2o.settings import STORAGES

STORAGES = {
    **STORAGES,
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = False
