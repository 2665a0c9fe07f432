"""The admin: every registered model's pages open for a superuser, vendor approval goes through
the services, and nobody but staff gets in."""

from datetime import timedelta

import pytest
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.models import LogEntry
from django.contrib.admin.utils import quote
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    SolarSchedule,
)
from rest_framework.authtoken.models import TokenProxy

from tests import factories
from vendors.models import Vendor

S = Vendor.Status


def _periodic_task():
    interval = IntervalSchedule.objects.create(every=30, period=IntervalSchedule.SECONDS)
    return PeriodicTask.objects.create(
        name="purge sessions", task="o2o.tasks.sessions_purge_expired", interval=interval
    )


# Models from other packages get one object each here; our own come from tests/factories.py.
THIRD_PARTY = {
    "auth.Group": lambda: Group.objects.create(name="support"),
    "authtoken.TokenProxy": lambda: TokenProxy.objects.create(user=factories.UserFactory()),
    "django_celery_beat.PeriodicTask": _periodic_task,
    "django_celery_beat.ClockedSchedule": lambda: ClockedSchedule.objects.create(
        clocked_time=timezone.now() + timedelta(days=1)
    ),
    "django_celery_beat.CrontabSchedule": lambda: CrontabSchedule.objects.create(minute="5"),
    "django_celery_beat.SolarSchedule": lambda: SolarSchedule.objects.create(
        event="sunrise", latitude=37.55, longitude=126.91
    ),
    "django_celery_beat.IntervalSchedule": lambda: IntervalSchedule.objects.create(
        every=5, period=IntervalSchedule.MINUTES
    ),
    # django-axes: the failed sign-ins it counts (staff unlock an account by deleting them)
    "axes.AccessAttempt": lambda: AccessAttempt.objects.create(
        username="guess@example.test",
        ip_address="198.51.100.7",
        user_agent="test",
        http_accept="text/html",
        path_info="/accounts/login/",
        get_data="",
        post_data="username=guess@example.test",
        failures_since_start=3,
    ),
    "axes.AccessLog": lambda: AccessLog.objects.create(
        username="someone@example.test",
        ip_address="198.51.100.7",
        user_agent="test",
        http_accept="text/html",
        path_info="/accounts/login/",
    ),
    "axes.AccessFailureLog": lambda: AccessFailureLog.objects.create(
        username="guess@example.test",
        ip_address="198.51.100.7",
        user_agent="test",
        http_accept="text/html",
        path_info="/accounts/login/",
        locked_out=True,
    ),
}


def _one_of(model):
    """One object of the model, or None when no factories module has a factory for it yet."""
    label = model._meta.label
    if label in THIRD_PARTY:
        return THIRD_PARTY[label]()
    # Each app's factories live beside its tests (tests/<app>/factories.py) or in tests/factories.py.
    import importlib

    modules = [factories]
    for app in ("orders", "payments", "partners", "subscriptions", "insights"):
        try:
            modules.append(importlib.import_module(f"tests.{app}.factories"))
        except ImportError:
            continue
    for module in modules:
        factory = getattr(module, f"{model.__name__}Factory", None)
        # Two apps may name a model alike (partners' and subscriptions' Delivery): the factory's own
        # model decides, not its name.
        if factory and factory._meta.model is model:
            return factory()
    return None


@pytest.fixture
def superuser_client(staff):
    client = Client(headers={"accept-language": "en"})
    client.force_login(staff)
    return client


@pytest.mark.parametrize("model", list(admin.site._registry), ids=lambda m: m._meta.label)
@pytest.mark.django_db
def test_every_admin_page_opens_for_a_superuser(superuser_client, model):
    # Given one object of the model
    obj = _one_of(model)
    model_admin = admin.site._registry[model]
    info = (model._meta.app_label, model._meta.model_name)
    changelist_url = reverse("admin:%s_%s_changelist" % info)
    # When a superuser opens its list, a search, (where allowed) its add page and its change page
    changelist = superuser_client.get(changelist_url)
    # Then each opens, and the object is listed
    assert changelist.status_code == 200
    if model_admin.search_fields:
        assert superuser_client.get(changelist_url, {"q": "a"}).status_code == 200
    if model_admin.has_add_permission(changelist.wsgi_request):
        assert superuser_client.get(reverse("admin:%s_%s_add" % info)).status_code == 200
    if obj is None:
        pytest.skip(
            f"only the empty pages were checked: add {model.__name__}Factory to tests/factories.py"
        )
    assert changelist.context["cl"].result_count >= 1
    change = superuser_client.get(reverse("admin:%s_%s_change" % info, args=[quote(obj.pk)]))
    assert change.status_code == 200


@pytest.mark.django_db
def test_every_foundation_model_has_a_factory():
    from django.apps import apps

    for app in ("accounts", "customers", "vendors"):
        for model in apps.get_app_config(app).get_models():
            name = f"{model.__name__}Factory"
            assert hasattr(factories, name), name


@pytest.mark.django_db
def test_every_model_of_ours_is_in_the_admin():
    from django.apps import apps

    # edited inside their pickup point / their vendor
    inline_only = {"vendors.OpeningHours", "vendors.VendorHours"}
    ours = {
        m._meta.label
        for app in ("accounts", "customers", "vendors")
        for m in apps.get_app_config(app).get_models()
    }
    registered = {m._meta.label for m in admin.site._registry}
    assert ours - inline_only <= registered


@pytest.mark.parametrize("path", ["/admin/", "/admin/vendors/vendor/"])
@pytest.mark.django_db
def test_people_who_are_not_staff_cannot_open_the_admin(client, customer, vendor, path):
    for user in (None, customer, vendor.user):
        if user:
            client.force_login(user)
        response = client.get(path)
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/")


@pytest.mark.django_db
def test_staff_without_permissions_cannot_change_vendors(client):
    clerk = factories.UserFactory(is_staff=True)
    pending = factories.VendorFactory(status=S.PENDING)
    client.force_login(clerk)
    assert client.get("/admin/").status_code == 200
    response = client.post(
        "/admin/vendors/vendor/", {"action": "approve", ACTION_CHECKBOX_NAME: [pending.pk]}
    )
    assert response.status_code == 403
    pending.refresh_from_db()
    assert pending.status == S.PENDING


def _act(client, action: str, *vendors: Vendor):
    return client.post(
        "/admin/vendors/vendor/",
        {"action": action, ACTION_CHECKBOX_NAME: [v.pk for v in vendors]},
        follow=True,
    )


def _statuses(*vendors: Vendor) -> list[str]:
    return [Vendor.objects.get(pk=v.pk).status for v in vendors]


def _history(vendor: Vendor) -> list[tuple[int, str]]:
    """The vendor's admin history (seen by staff only): who did what, oldest first."""
    entries = LogEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(Vendor), object_id=str(vendor.pk)
    ).order_by("pk")
    return [(e.user_id, e.get_change_message()) for e in entries]


@pytest.mark.django_db
def test_approve_action_approves_pending_and_skips_what_it_cannot(superuser_client, staff):
    # Given a pending application, a suspended vendor and a rejected one
    pending = factories.VendorFactory(status=S.PENDING)
    suspended = factories.VendorFactory(status=S.SUSPENDED)
    rejected = factories.VendorFactory(status=S.REJECTED)
    assert superuser_client.get(f"/vendors/{pending.slug}/").status_code == 404
    # When staff approve all three from the list
    response = _act(superuser_client, "approve", pending, suspended, rejected)
    # Then the first two are approved and the rejected one is left with a warning
    assert response.status_code == 200
    assert _statuses(pending, suspended, rejected) == [S.APPROVED, S.APPROVED, S.REJECTED]
    # And no reason was typed, so the vendor is shown none; who did it is in the admin history
    assert Vendor.objects.get(pk=pending.pk).status_reason == ""
    assert _history(pending) == [(staff.pk, "Status changed to Approved.")]
    assert _history(suspended) == [(staff.pk, "Status changed to Approved.")]
    assert _history(rejected) == []
    texts = [str(m) for m in get_messages(response.wsgi_request)]
    assert any("2 vendors approved" in t for t in texts), texts
    assert any(rejected.name in t for t in texts), texts
    # And the approved vendor is now public
    assert Client().get(f"/vendors/{pending.slug}/").status_code == 200


@pytest.mark.django_db
def test_suspend_action_hides_the_vendor(superuser_client):
    approved = factories.VendorFactory(status=S.APPROVED)
    pending = factories.VendorFactory(status=S.PENDING)
    _act(superuser_client, "suspend", approved, pending)
    assert _statuses(approved, pending) == [S.SUSPENDED, S.PENDING]
    assert Client().get(f"/vendors/{approved.slug}/").status_code == 404


@pytest.mark.django_db
def test_reject_action_rejects_only_applications(superuser_client):
    pending = factories.VendorFactory(status=S.PENDING)
    approved = factories.VendorFactory(status=S.APPROVED)
    _act(superuser_client, "reject", pending, approved)
    assert _statuses(pending, approved) == [S.REJECTED, S.APPROVED]


@pytest.mark.django_db
def test_vendor_status_cannot_be_edited_by_hand(superuser_client):
    vendor = factories.VendorFactory(status=S.PENDING)
    response = superuser_client.get(f"/admin/vendors/vendor/{vendor.pk}/change/")
    assert response.status_code == 200
    assert "status" not in response.context["adminform"].form.fields
    assert superuser_client.get("/admin/vendors/vendor/add/").status_code == 403


@pytest.mark.django_db
def test_stock_is_read_only_in_the_admin(superuser_client):
    stock = factories.StockFactory(quantity=4)
    response = superuser_client.post(
        f"/admin/vendors/stock/{stock.pk}/change/",
        {"vendor": stock.vendor_id, "product": stock.product_id, "quantity": 400},
    )
    assert response.status_code == 403
    stock.refresh_from_db()
    assert stock.quantity == 4


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("action", "start"),
    [
        ("approve", Vendor.Status.PENDING),
        ("suspend", Vendor.Status.APPROVED),
        ("reject", Vendor.Status.PENDING),
    ],
)
def test_staff_who_may_only_view_vendors_cannot_change_their_status(action, start):
    # Given a staff seat that may view vendors and nothing more
    from django.contrib.auth.models import Permission

    viewer = factories.StaffFactory(is_superuser=False)
    viewer.user_permissions.add(Permission.objects.get(codename="view_vendor"))
    target = factories.VendorFactory(status=start)
    client = Client()
    client.force_login(viewer)
    # Then the list offers no status action, and posting one changes nothing
    page = client.get("/admin/vendors/vendor/")
    assert page.status_code == 200
    assert f'value="{action}"' not in page.content.decode()
    client.post("/admin/vendors/vendor/", {"action": action, ACTION_CHECKBOX_NAME: [target.pk]})
    assert Vendor.objects.get(pk=target.pk).status == start


# --- The reason a vendor sees ------------------------------------------------------------------


def _dashboard(vendor: Vendor, language: str = "ko") -> str:
    client = Client(headers={"accept-language": language})
    client.force_login(vendor.user)
    response = client.get("/vendors/me/")
    assert response.status_code == 200
    return response.content.decode()


@pytest.mark.django_db
def test_a_suspended_vendor_does_not_see_who_suspended_them(superuser_client, staff, vendor):
    # Given staff suspending an approved vendor from the admin list without typing a reason
    _act(superuser_client, "suspend", vendor)
    # When the vendor opens their dashboard (in Korean, the default)
    html = _dashboard(vendor)
    # Then they read that they are suspended, and nothing of the staff member
    assert Vendor.objects.get(pk=vendor.pk).status == S.SUSPENDED
    assert Vendor.objects.get(pk=vendor.pk).status_reason == ""
    assert "계정이 이용 정지되어" in html
    assert staff.email not in html
    # And staff still see who did it, in the vendor's admin history
    assert _history(vendor) == [(staff.pk, "Status changed to Suspended.")]


@pytest.mark.django_db
def test_the_reason_staff_type_for_the_vendor_is_shown_on_the_dashboard(superuser_client, vendor):
    # Given staff suspending a vendor with a reason typed in the action bar
    superuser_client.post(
        "/admin/vendors/vendor/",
        {
            "action": "suspend",
            ACTION_CHECKBOX_NAME: [vendor.pk],
            "reason": "  Missed the health check.  ",
        },
    )
    # When the vendor opens their dashboard
    html = _dashboard(vendor, "en")
    # Then they read the status sentence and that reason, trimmed
    assert Vendor.objects.get(pk=vendor.pk).status_reason == "Missed the health check."
    assert "Your account is suspended" in html
    assert '<p class="muted">Missed the health check.</p>' in html
