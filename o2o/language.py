"""The language switch: Django's own set_language (cookie, safe redirect), which also remembers a
vendor's choice on the vendor (Vendor.language), so that what is made for the vendor outside a
request (statements by e-mail or a task) and the statements they download are in their language."""

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.i18n import set_language as django_set_language

from vendors.models import Vendor

LANGUAGE_CODES = frozenset(code for code, _name in settings.LANGUAGES)


def vendor_language_set(*, user_id: int, language: str) -> bool:
    """The language of the vendor whose user this is (if any); False when there is no such vendor
    or the language is not one of settings.LANGUAGES (nothing is changed then)."""
    if language not in LANGUAGE_CODES:
        return False
    return Vendor.objects.filter(user_id=user_id).update(language=language) > 0


def set_language(request: HttpRequest) -> HttpResponse:
    """POST language=ko|en (and next): Django's switch, remembered for a signed-in vendor."""
    response = django_set_language(request)
    language = request.POST.get("language", "")
    if request.method == "POST" and request.user.is_authenticated:
        vendor_language_set(user_id=request.user.pk, language=language)
    return response
