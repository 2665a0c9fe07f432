"""Our Korean catalogues come before Django's (LOCALE_PATHS, then apps), so a msgid of ours that
Django also uses would change Django admin's wording. Words that mean something else here carry a
context (pgettext); these tests keep the admin's own words and ours apart."""

import gettext as stdlib_gettext

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


def test_no_msgid_means_two_things_in_our_two_catalogues():
    # The main catalogue wins over the payments app's: a msgid in both must say the same thing.
    def catalogue(path):
        with open(settings.BASE_DIR / path / "ko/LC_MESSAGES/django.mo", "rb") as fh:
            return stdlib_gettext.GNUTranslations(fh)._catalog

    main, pay = catalogue("locale"), catalogue("payments/locale")
    clashes = [
        (msgid, main[msgid], text)
        for msgid, text in pay.items()
        if msgid and main.get(msgid, text) != text
    ]
    assert clashes == []
