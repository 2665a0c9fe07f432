from django.urls import path

from . import favourite_views

app_name = "customers"

urlpatterns = [
    path("", favourite_views.favourites_page, name="favourites"),
    path("<slug:slug>/notify/", favourite_views.favourite_notify, name="favourite-notify"),
    path("stop/<str:token>/", favourite_views.favourite_stop, name="favourite-stop"),
    path("<slug:slug>/", favourite_views.favourite_set, name="favourite-set"),
]
