from django.urls import path

from . import views

app_name = "counter"

urlpatterns = [
    # The vendor's counter
    path("counter/", views.vendor_counter, name="vendor"),
    path("counter/qr/", views.vendor_qr, name="vendor-qr"),
    path("counter/sales/", views.vendor_sales, name="vendor-sales"),
    path("counter/basket/", views.vendor_basket, name="vendor-basket"),
    # The buyer's side (short paths: they are in QR codes)
    path("c/s/<str:code>/", views.scan, name="scan"),
    path("c/b/<str:code>/", views.basket, name="basket"),
    path("c/o/<str:code>/", views.order, name="order"),
    path("c/<int:vendor_id>/", views.cart, name="cart"),
]
