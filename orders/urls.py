from django.urls import path

from . import cash_views, handover_views, reorder_views, views

app_name = "orders"

urlpatterns = [
    path("", views.order_list, name="list"),
    path("cart/", views.cart_page, name="cart"),
    path("cart/add/", views.cart_add, name="cart-add"),
    path("cart/update/", views.cart_update, name="cart-update"),
    path("cart/remove/", views.cart_remove, name="cart-remove"),
    path("checkout/", views.checkout, name="checkout"),
    path("vendor/", views.inbox, name="inbox"),
    path("vendor/list/", views.inbox_list, name="inbox-list"),
    path("vendor/history/", views.vendor_history, name="vendor-history"),
    path("vendor/scan/", handover_views.vendor_scan, name="vendor-scan"),
    path("vendor/cash/", cash_views.vendor_cash, name="vendor-cash"),
    path("vendor/cash/<int:order_id>/undo/", cash_views.vendor_cash_undo, name="vendor-cash-undo"),
    path("vendor/<int:order_id>/<slug:action>/", views.vendor_action, name="vendor-action"),
    path("<int:order_id>/", views.order_detail, name="detail"),
    path("<int:order_id>/status/", views.order_status, name="status"),
    path("<int:order_id>/paid/", views.paid, name="paid"),
    path("<int:order_id>/pay/", views.pay, name="pay"),
    path("<int:order_id>/payment/refresh/", views.payment_refresh, name="payment-refresh"),
    path("<int:order_id>/cancel/", views.cancel, name="cancel"),
    path("<int:order_id>/problem/", views.problem_report, name="problem"),
    path("<int:order_id>/again/", reorder_views.order_again, name="again"),
    path("<int:order_id>/receipt/", views.receipt, name="receipt"),
]
