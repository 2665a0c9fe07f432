from typing import Any

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse
from django.shortcuts import resolve_url
from django.urls import NoReverseMatch, reverse

from customers.forms import EmailLoginForm

from .throttle import over_limit, over_limit_message, refused


class PasswordResetView(auth_views.PasswordResetView):
    """Django's password reset, limited per address and per e-mail address (each post sends an
    e-mail)."""

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if over_limit(request, scope="password_reset", email=request.POST.get("email")):
            form = refused(self.get_form(), over_limit_message())
            return self.render_to_response(self.get_context_data(form=form), status=429)
        return super().post(request, *args, **kwargs)


class LoginView(auth_views.LoginView):
    """Log in by e-mail, then land where the person's work is, unless they were on their way
    somewhere (a safe ?next=, checked by Django, always wins).

    - A vendor on shift lands on the order inbox: orders come in only while on shift. Off shift,
      nothing can come in and the first thing to do is go on shift, so they land on /shift/. A
      vendor not approved yet (or suspended) lands on their cart's page, which says why.
    - A pickup point's partner lands on the point's page.
    - Staff land in the admin; everybody else on the live map, the customer's start."""

    authentication_form = EmailLoginForm
    redirect_authenticated_user = True

    def get_default_redirect_url(self) -> str:
        return landing_url(self.request.user)


def landing_url(user: Any) -> str:
    vendor = getattr(user, "vendor", None) if hasattr(user, "vendor") else None
    if vendor is not None:
        if not vendor.can_sell:
            return reverse("vendors:dashboard")
        position = getattr(vendor, "position", None) if hasattr(vendor, "position") else None
        return reverse("orders:inbox" if position and position.on_shift else "tracking:shift")
    if hasattr(user, "point_staff"):
        try:
            return reverse("partners:point")
        except NoReverseMatch:  # the partner pages are not routed (yet)
            pass
    if getattr(user, "is_staff", False):
        return reverse("admin:index")
    try:
        return reverse("tracking:map")
    except NoReverseMatch:
        return resolve_url(settings.LOGIN_REDIRECT_URL)
