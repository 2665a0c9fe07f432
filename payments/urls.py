from django.urls import path

from . import views

app_name = "payments"

urlpatterns = [
    path("webhooks/<slug:provider>/", views.webhook, name="webhook"),
    # The customer's saved cards
    path("cards/", views.cards, name="cards"),
    # The vendor's money (and, for staff, any vendor's)
    path("earnings/", views.earnings_mine, name="earnings"),
    path("earnings/vendor/<int:vendor_id>/", views.earnings_of_vendor, name="earnings-vendor"),
    path("earnings/orders/<int:order_id>/", views.earnings_order, name="earnings-order"),
    path("statements/", views.statement_list, name="statements"),
    path("statements/<int:settlement_id>/", views.statement_detail, name="statement"),
    path(
        "statements/<int:settlement_id>.<slug:fmt>",
        views.statement_detail,
        name="statement-download",
    ),
    # Staff (Django admin pages, linked from the admin index)
    path("staff/money/", views.money_dashboard, name="money-dashboard"),
    path("staff/adjustments/new/", views.adjustment_new, name="adjustment-new"),
]
