"""Every app's API under /api/."""

from django.urls import path
from rest_framework.authtoken.views import obtain_auth_token

from vendors import api as vendors_api

urlpatterns = [
    path("auth/token/", obtain_auth_token, name="api-token"),
    path("vendors/", vendors_api.VendorListApi.as_view(), name="api-vendors"),
    path("vendors/me/stock/", vendors_api.OwnStockApi.as_view(), name="api-own-stock"),
    path("vendors/<slug:slug>/", vendors_api.VendorDetailApi.as_view(), name="api-vendor"),
    path("products/", vendors_api.ProductListApi.as_view(), name="api-products"),
]
