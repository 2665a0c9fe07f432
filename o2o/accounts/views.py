from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse

from .throttle import over_limit, over_limit_message, refused


class PasswordResetView(auth_views.PasswordResetView):
    """Django's password reset, limited per address and per e-mail address (each post sends an
    e-mail)."""

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if over_limit(request, scope="password_reset", email=request.POST.get("email")):
            form = refused(self.get_form(), over_limit_message())
            return self.render_to_response(self.get_context_data(form=form), status=429)
        return super().post(request, *args, **kwargs)
