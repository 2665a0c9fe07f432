"""One ASGI application for HTTP and websockets.

Websockets pass through AllowedHostsOriginValidator (the Origin header must be one of ALLOWED_HOSTS);
all but the public map socket then through AuthMiddlewareStack (the Django session user is on
scope["user"]).
The lifespan (o2o.lifespan) closes what the process holds on Redis when the server stops.
"""

import os

from django.core.asgi import get_asgi_application
from django.urls import re_path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "o2o.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402

from o2o.admission import Admission  # noqa: E402
from o2o.lifespan import lifespan  # noqa: E402
from o2o.routing import public_websocket_urlpatterns, websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        # Admission control (o2o.admission): over capacity, a fast 503 rather than a queue.
        "http": Admission(
            django_asgi_app,
            in_flight=settings.WEB_MAX_IN_FLIGHT,
            queued=settings.WEB_MAX_QUEUED,
            wait_s=settings.WEB_QUEUE_WAIT_S,
        ),
        "websocket": AllowedHostsOriginValidator(
            URLRouter(
                [
                    *public_websocket_urlpatterns,
                    re_path(r"", AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
                ]
            )
        ),
        "lifespan": lifespan,  # at shutdown: close the map hub and the layer's connections
    }
)
