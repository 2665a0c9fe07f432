"""Staff pages of the insight app, under /insights/demand/ (mounted before the vendor's
/insights/ pages in o2o/urls.py)."""

from django.urls import path

from . import staff_views

app_name = "insights-staff"

urlpatterns = [
    path("", staff_views.demand_page, name="demand"),
]
