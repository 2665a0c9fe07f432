"""The pickup point's own pages, under /partner/ (o2o/urls.py)."""

from django.urls import path

from . import views

app_name = "partners"

urlpatterns = [
    path("point/", views.point, name="point"),
    path("point/orders/", views.point_orders, name="point-orders"),
]
