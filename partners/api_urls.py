"""The partner API, under /api/partner/ (o2o/api_urls.py)."""

from django.urls import path

from . import api

urlpatterns = [
    path("endpoints/", api.EndpointsApi.as_view(), name="api-partner-endpoints"),
    path(
        "endpoints/<int:endpoint_id>/",
        api.EndpointDetailApi.as_view(),
        name="api-partner-endpoint",
    ),
    path(
        "endpoints/<int:endpoint_id>/rotate-secret/",
        api.EndpointRotateSecretApi.as_view(),
        name="api-partner-endpoint-rotate-secret",
    ),
    path("deliveries/", api.DeliveriesApi.as_view(), name="api-partner-deliveries"),
    path("orders/", api.PartnerOrdersApi.as_view(), name="api-partner-orders"),
    path(
        "orders/<int:order_id>/collect/",
        api.PartnerOrderCollectApi.as_view(),
        name="api-partner-order-collect",
    ),
]
