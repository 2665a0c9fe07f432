from django.urls import path

from . import round_views

app_name = "round"

urlpatterns = [
    path("", round_views.round_today, name="today"),
    path("tap/", round_views.round_tap, name="tap"),
    path("tomorrow/", round_views.round_tomorrow, name="tomorrow"),
    path("sw.js", round_views.round_service_worker, name="sw"),
]
