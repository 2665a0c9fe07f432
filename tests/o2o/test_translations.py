"""Our Korean catalogues come before Django's (LOCALE_PATHS, then apps), so a msgid of ours that
Django also uses would change Django admin's wording. Words that mean something else here carry a
context (pgettext); these tests keep the admin's own words and ours apart."""

import pytest
from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext, pgettext

from vendors.models import Vendor


@pytest.fixture(autouse=True)
def korean():
    with translation.override("ko"):
        yield


def test_the_admin_keeps_its_own_words():
    # "Home" is the admin breadcrumb, "History" an object's change history, "Remove" and "Change"
    # the admin's buttons: Django's Korean, not our address label, vendor tab or cart button.
    assert gettext("Home") == "홈"
    assert gettext("History") == "히스토리"
    assert gettext("Remove") == "삭제"
    assert gettext("Change") == "변경"


def test_our_words_in_context():
    assert pgettext("address label", "Home") == "집"
    assert pgettext("vendor inbox tab", "History") == "지난 주문"
    assert pgettext("cart line", "Remove") == "빼기"
    assert pgettext("change the cart", "Change") == "바꾸기"


def test_a_rejected_vendor_and_a_rejected_dispute_are_told_apart():
    from payments.models import Dispute

    assert str(Vendor.Status.REJECTED.label) == "승인 거절"
    assert str(Dispute.Status.REJECTED.label) == "기각됨"


def test_one_catalogue_for_the_whole_project():
    # The payments app once had a catalogue of its own, extracted apart from its templates; now
    # every string of the project is in locale/ (`make messages`), so no app may grow its own.
    stray = [
        str(path.relative_to(settings.BASE_DIR))
        for path in settings.BASE_DIR.glob("*/**/locale/*/LC_MESSAGES/django.po")
        if not path.is_relative_to(settings.BASE_DIR / "locale")
        and not any(part.startswith(".") or part == "node_modules" for part in path.parts)
    ]
    assert stray == []
    assert [str(p) for p in settings.LOCALE_PATHS] == [str(settings.BASE_DIR / "locale")]


def test_statement_and_dashboard_words_leave_the_admins_alone():
    # Words the payments pages share with Django's admin (and celery beat's) carry a context.
    assert gettext("Summary") == "개요"
    assert pgettext("statement", "Summary") == "요약"
    assert pgettext("statement", "Type") == "구분"
    assert pgettext("money table column", "Day") == "날짜"
