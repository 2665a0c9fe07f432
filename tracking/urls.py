from django.urls import path

from . import views

app_name = "tracking"

urlpatterns = [
    path("map/", views.map_page, name="map"),
    path("shift/", views.shift_page, name="shift"),
    path("shift/manifest.webmanifest", views.manifest, name="manifest"),
    path("shift/sw.js", views.service_worker, name="sw"),
]
