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
        path("api/v1/refunds", api.refunds, name="api-refunds"),
        path("api/v1/payouts", api.payouts, name="api-payouts"),
        path("api/v1/payouts/<str:payout_id>", api.payout_detail, name="api-payout"),
        path("pay/<str:intent_id>/", views.pay, name="pay"),
        path("pay/<str:intent_id>/challenge/", views.challenge, name="challenge"),
    ]
    if settings.SANDBOX_ENABLED
    else []
)
