"""/sandbox/: the sandbox provider's API and hosted pages. Mounted only while SANDBOX_ENABLED."""

from django.conf import settings
from django.urls import path

from . import api, views

app_name = "sandbox"

urlpatterns = (
    [
        path("api/v1/intents", api.intents, name="api-intents"),
        path("api/v1/intents/<str:intent_id>", api.intent_detail, name="api-intent"),
        path("api/v1/intents/<str:intent_id>/capture", api.intent_capture, name="api-capture"),
        path("api/v1/intents/<str:intent_id>/void", api.intent_void, name="api-void"),
        path("api/v1/intents/<str:intent_id>/confirm", api.intent_confirm, name="api-confirm"),
        path("api/v1/refunds", api.refunds, name="api-refunds"),
        path("api/v1/customers", api.customers, name="api-customers"),
        path("api/v1/customers/<str:customer_id>", api.customer_detail, name="api-customer"),
        path(
            "api/v1/customers/<str:customer_id>/payment_methods",
            api.customer_payment_methods,
            name="api-customer-payment-methods",
        ),
        path(
            "api/v1/payment_methods/<str:payment_method_id>/detach",
            api.payment_method_detach,
            name="api-payment-method-detach",
        ),
        path("api/v1/setup_sessions", api.setup_sessions, name="api-setup-sessions"),
        path("api/v1/setup_sessions/<str:setup_id>", api.setup_session_detail, name="api-setup"),
        path("api/v1/payouts", api.payouts, name="api-payouts"),
        path("api/v1/payouts/<str:payout_id>", api.payout_detail, name="api-payout"),
        path("pay/<str:intent_id>/", views.pay, name="pay"),
        path("pay/<str:intent_id>/challenge/", views.challenge, name="challenge"),
        path("setup/<str:setup_id>/", views.setup, name="setup"),
    ]
    if settings.SANDBOX_ENABLED
    else []
)
