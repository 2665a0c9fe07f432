"""Websocket routes of every app, gathered for the ASGI router (o2o.asgi).

The map socket is public and never reads the user: it is routed before the session and auth
middleware, so neither a session lookup at connect nor the session wrapper around each of its
sends (several a second per socket) is paid for it. Every other socket knows its user.

The last route catches every other path and closes it with 4404: without it the router raises
"No route found" for an unknown path or a non-numeric order id."""

from django.urls import path, re_path

from o2o.consumers import NotFoundConsumer
from orders.consumers import OrderConsumer, VendorOrdersConsumer
from tracking.consumers import MapConsumer, VendorLocationConsumer
from vendors.consumers import VendorStockConsumer

public_websocket_urlpatterns = [
    path("ws/map/", MapConsumer.as_asgi()),
    path("ws/vendors/<slug:slug>/stock/", VendorStockConsumer.as_asgi()),
]

websocket_urlpatterns = [
    path("ws/vendor/location/", VendorLocationConsumer.as_asgi()),
    path("ws/orders/<int:order_id>/", OrderConsumer.as_asgi()),
    path("ws/vendor/orders/", VendorOrdersConsumer.as_asgi()),
    re_path(r"", NotFoundConsumer.as_asgi()),  # last: any other path
]
