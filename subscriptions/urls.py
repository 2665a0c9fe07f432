from django.urls import path

from . import views, wellbeing_views

app_name = "subscriptions"

urlpatterns = [
    path("", views.subscription_list, name="list"),
    path("new/", views.subscription_new, name="new"),
    path("wellbeing/ask/", wellbeing_views.wellbeing_ask, name="wellbeing-ask"),
    path("wellbeing/ask/sent/", wellbeing_views.wellbeing_ask_sent, name="wellbeing-ask-sent"),
    path("wellbeing/<uuid:token>/", wellbeing_views.wellbeing_answer, name="wellbeing-answer"),
    path("<int:subscription_id>/", views.subscription_detail, name="detail"),
    path("<int:subscription_id>/<slug:action>/", views.subscription_action, name="action"),
]
