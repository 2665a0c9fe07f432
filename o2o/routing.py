"""Websocket routes of every app, gathered in one list for the ASGI router."""

from django.urls import path

from orders.consumers import OrderConsumer, VendorOrdersConsumer
from tracking.consumers import MapConsumer, VendorLocationConsumer

websocket_urlpatterns = [
    path("ws/map/", MapConsumer.as_asgi()),
    path("ws/vendor/location/", VendorLocationConsumer.as_asgi()),
    path("ws/orders/<int:order_id>/", OrderConsumer.as_asgi()),
    path("ws/vendor/orders/", VendorOrdersConsumer.as_asgi()),
]
