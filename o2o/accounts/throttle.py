"""Limits on guessing: sign-in (django-axes) and the password reset and signup forms.

Sign-in, on the login page, Django admin and the token API, is counted by django-axes in the
database, per account and per client address (AXES_* settings); the callables below tell it
which account and address an attempt is for and how a lockout answers. Password reset and
signup send e-mails and create accounts rather than check a password, so axes does not see them:
`over_limit` counts their posts in the cache, per address and per e-mail address, in fixed
windows. A cache that does not answer counts nothing and lets the request through (o2o.cache):
being down must not lock everyone out.
"""

import hashlib
import math
from collections.abc import Mapping

from axes.helpers import get_cool_off
from django import forms
from django.conf import settings
from django.core.cache import cache
from django.forms.utils import ErrorDict
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.translation import ngettext

from customers.forms import EmailLoginForm


def client_address(request: HttpRequest) -> str | None:
    """The address the nearest trusted proxy saw (uvicorn's proxy headers set REMOTE_ADDR)."""
    return request.META.get("REMOTE_ADDR") or None


def attempted_email(request: HttpRequest, credentials: Mapping | None = None) -> str | None:
    """The account an attempt is for: the login form sends `username`, the token API `email`."""
    data = credentials if credentials else getattr(request, "POST", {})
    email = data.get("email") or data.get("username")
    return email.strip().lower() if isinstance(email, str) and email.strip() else None


def _minutes(seconds: float) -> int:
    return max(1, math.ceil(seconds / 60))


def lockout_message() -> str:
    minutes = _minutes(get_cool_off().total_seconds())
    return ngettext(
        "Too many failed sign-in attempts. For your security, signing in is locked for "
        "%(minutes)d minute. Try again later.",
        "Too many failed sign-in attempts. For your security, signing in is locked for "
        "%(minutes)d minutes. Try again later.",
        minutes,
    ) % {"minutes": minutes}


def lockout_response(request: HttpRequest, *args, **kwargs) -> HttpResponse:
    """AXES_LOCKOUT_CALLABLE: a 429 in the API's error shape, or the login page saying why.

    (axes passes the original response and the credentials positionally, in an order that
    differs between its sync and async middleware; neither is needed here.)"""
    message = lockout_message()
    retry_after = str(int(get_cool_off().total_seconds()))
    if request.path.startswith("/api/"):
        response: HttpResponse = JsonResponse(
            {"error": {"code": "locked_out", "message": message}}, status=429
        )
    else:
        form = EmailLoginForm(request, data={"username": attempted_email(request) or ""})
        response = render(
            request,
            "registration/login.html",
            {"form": refused(form, message), "next": request.POST.get("next", "")},
            status=429,
        )
    response["Retry-After"] = retry_after
    return response


def refused(form: forms.BaseForm, message: str) -> forms.BaseForm:
    """`form` carrying only `message`: a refused post is not validated (a signup's e-mail check
    would tell whether an account exists; a login's would count one more attempt)."""
    form._errors = ErrorDict()
    form.cleaned_data = {}
    form.add_error(None, message)
    return form


def _key(scope: str, kind: str, value: str) -> str:
    digest = hashlib.sha256(value.encode()).hexdigest()[:32]
    return f"limit:{scope}:{kind}:{digest}"


def _count(key: str, window: int) -> int:
    """One more hit on `key`; 0 when the cache can't count (the caller lets the request pass)."""
    try:
        cache.add(key, 0, timeout=window)
        return cache.incr(key)
    except ValueError:  # the key vanished, or the cache is not answering
        return 0


def over_limit(request: HttpRequest, *, scope: str, email: str | None) -> bool:
    """Count one post of `scope` ("password_reset", "signup") from this address and for this
    e-mail address; True when either is over its limit in the current window."""
    limits = settings.FORM_LIMITS[scope]
    window = settings.FORM_LIMIT_WINDOW_S
    over = (
        _count(_key(scope, "address", client_address(request) or "-"), window) > limits["address"]
    )
    if email:
        email = email.strip().lower()
        over |= _count(_key(scope, "account", email), window) > limits["account"]
    return over


def over_limit_message() -> str:
    minutes = _minutes(settings.FORM_LIMIT_WINDOW_S)
    return ngettext(
        "Too many attempts. Please wait up to %(minutes)d minute and try again.",
        "Too many attempts. Please wait up to %(minutes)d minutes and try again.",
        minutes,
    ) % {"minutes": minutes}
