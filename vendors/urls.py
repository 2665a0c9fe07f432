from django.urls import path

from . import views

app_name = "vendors"

urlpatterns = [
    path("", views.vendor_list, name="list"),
    path("apply/", views.vendor_apply_view, name="apply"),
    path("me/", views.vendor_dashboard, name="dashboard"),
    path("me/stock/", views.stock_edit, name="stock"),
    path("me/stock/lots/", views.lot_action, name="lots"),
    path("me/hours/", views.hours_edit, name="hours"),
    path("<slug:slug>/", views.vendor_detail, name="detail"),
]
