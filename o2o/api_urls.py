"""Every app's API under /api/."""

from django.urls import path, re_path

from o2o.accounts.api import ObtainTokenApi
from tracking import api as tracking_api
from vendors import api as vendors_api

urlpatterns = [
    path("auth/token/", ObtainTokenApi.as_view(), name="api-token"),
    path("vendors/", vendors_api.VendorListApi.as_view(), name="api-vendors"),
    re_path(r"^vendors/nearby/?$", tracking_api.NearbyApi.as_view(), name="api-vendors-nearby"),
    path("tracking/shift/", tracking_api.ShiftApi.as_view(), name="api-shift"),
    path("tracking/pings/", tracking_api.PingBatchApi.as_view(), name="api-ping-batch"),
    path("tracking/me/", tracking_api.OwnTrackApi.as_view(), name="api-own-track"),
    path("vendors/me/stock/", vendors_api.OwnStockApi.as_view(), name="api-own-stock"),
    path("vendors/<slug:slug>/", vendors_api.VendorDetailApi.as_view(), name="api-vendor"),
    path("products/", vendors_api.ProductListApi.as_view(), name="api-products"),
]
