from django.contrib import messages
from django.contrib.auth import login
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from o2o.accounts.throttle import over_limit, over_limit_message, refused
from o2o.forms import add_service_error

from .forms import SignupForm
from .services import customer_signup


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("home")
    form = SignupForm(request.POST or None)
    if request.method == "POST" and over_limit(
        request, scope="signup", email=request.POST.get("email")
    ):
        form = refused(form, over_limit_message())
        return render(request, "registration/signup.html", {"form": form}, status=429)
    if request.method == "POST" and form.is_valid():
        try:
            profile = customer_signup(
                email=form.cleaned_data["email"],
                password=form.cleaned_data["password1"],
                name=form.cleaned_data["name"],
            )
        except ValidationError as exc:
            if hasattr(exc, "error_dict"):
                add_service_error(form, exc)
            else:  # validate_password's messages
                form.add_error("password1", exc)
        else:
            login(request, profile.user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(request, _("Welcome! Your account is ready."))
            nxt = request.GET.get("next", "")
            if url_has_allowed_host_and_scheme(nxt, {request.get_host()}, request.is_secure()):
                return redirect(nxt)
            return redirect("home")
    return render(request, "registration/signup.html", {"form": form})
