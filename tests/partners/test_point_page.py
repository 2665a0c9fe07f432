"""The pickup point's phone page (/partner/point/): its people see what waits at their point and
hand it over with the customer's code, through order_collect_at_point (the same guarded edge and
attempt limits as the partner API); nobody else sees or collects anything there."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from orders.models import Order, Status
from partners.demo import POINT_STAFF, point_staff_seed
from partners.models import PointStaff
from partners.templatetags.point_staff import first_name
from tests.factories import CustomerProfileFactory, UserFactory
from tests.orders.conftest import messages_of
from tests.orders.factories import always_open_point
from tests.partners.factories import PartnerFactory, PointStaffFactory
from tests.partners.test_api import ready_pickup_order

pytestmark = pytest.mark.django_db

POINT = "/partner/point/"
FRAGMENT = "/partner/point/orders/"


def wrong_code(order: Order) -> str:
    return "0000" if order.handover_code != "0000" else "1111"


@pytest.fixture
def point():
    return always_open_point(name="합정역 편의점")


@pytest.fixture
def clerk(point):
    return PointStaffFactory(pickup_point=point).user


def as_(user, language: str = "en") -> Client:
    client = Client(headers={"accept-language": language})
    client.force_login(user)
    return client


def collect(client: Client, order: Order, code: str):
    return client.post(POINT, {"order": order.pk, "code": code}, follow=True)


def test_the_url_names_the_nav_relies_on():
    assert reverse("partners:point") == POINT
    assert reverse("partners:point-orders") == FRAGMENT


def test_the_point_lists_its_own_waiting_orders_with_first_name_items_and_collect_by(
    point, clerk, django_assert_max_num_queries
):
    # Given two orders waiting at the clerk's point and one at another point
    mine = [ready_pickup_order(point), ready_pickup_order(point)]
    mine[0].customer.user.name = "김민지"
    mine[0].customer.user.save()
    elsewhere = ready_pickup_order(always_open_point(name="공덕역 서점"))
    client = as_(clerk)

    # When the clerk opens the page (a fixed number of queries, however many orders wait)
    with django_assert_max_num_queries(14):
        page = client.get(POINT)

    # Then exactly the point's waiting orders are listed, soonest collect-by first
    assert page.status_code == 200
    assert [o.pk for o in page.context["waiting"]] == [o.pk for o in mine]
    html = page.content.decode()
    assert f'data-testid="waiting-{elsewhere.pk}"' not in html
    assert "합정역 편의점" in html and "Waiting to be collected" in html
    assert "민지" in html and "김민지" not in html  # the first name only
    line = mine[0].lines.get()
    assert f"{line.name_en} × <strong>2</strong>" in html
    assert "Collect by" in html
    for order in mine:  # the codes are the customer's to show, never on this page
        assert f">{order.handover_code}<" not in html
    assert mine[0].customer.user.email not in html


def test_the_right_code_hands_over_once_and_the_order_moves_to_collected(point, clerk):
    order = ready_pickup_order(point)
    client = as_(clerk)

    done = collect(client, order, order.handover_code)

    assert done.status_code == 200
    assert f"#{order.pk} handed over. Thank you!" in messages_of(done)
    order.refresh_from_db()
    assert order.status == Status.HANDED_OVER and order.handed_over_at is not None
    assert order.events.last().actor_id == clerk.pk
    assert [o.pk for o in done.context["collected"]] == [order.pk]
    assert done.context["waiting"] == []
    # A second hand-over of the same order is refused, clearly
    again = collect(client, order, order.handover_code)
    assert f"#{order.pk} was already collected." in messages_of(again)
    assert Order.objects.get(pk=order.pk).status == Status.HANDED_OVER


def test_a_wrong_code_is_refused_and_too_many_lock_the_order(point, clerk):
    order = ready_pickup_order(point)
    client = as_(clerk)

    wrong = collect(client, order, wrong_code(order))

    assert wrong.status_code == 200
    assert messages_of(wrong) == [
        f"#{order.pk}: That code is not right. Ask the customer to show it."
    ]
    assert Order.objects.get(pk=order.pk).status == Status.READY
    # Four more wrong tries use up the five; then even the right code waits
    for _ in range(4):
        collect(client, order, wrong_code(order))
    locked = collect(client, order, order.handover_code)
    assert messages_of(locked) == [
        f"#{order.pk}: Too many wrong codes. Wait 15 minutes or ask support to help."
    ]
    assert Order.objects.get(pk=order.pk).status == Status.READY


def test_another_points_staff_can_neither_see_nor_collect(point):
    # Given an order waiting at the point, and a clerk of another point who knows its code
    order = ready_pickup_order(point)
    other = PointStaffFactory(pickup_point=always_open_point()).user
    client = as_(other)

    page = client.get(POINT)
    refused = collect(client, order, order.handover_code)

    assert f'data-testid="waiting-{order.pk}"' not in page.content.decode()
    assert messages_of(refused) == [f"#{order.pk}: this order is not for this pickup point."]
    assert Order.objects.get(pk=order.pk).status == Status.READY
    # ... and their attempt did not count against the customer's order
    for _ in range(5):
        collect(client, order, wrong_code(order))
    mine = collect(as_(PointStaffFactory(pickup_point=point).user), order, order.handover_code)
    assert f"#{order.pk} handed over. Thank you!" in messages_of(mine)


@pytest.mark.parametrize("who", ["customer", "partner_owner", "inactive", "staff"])
def test_only_active_point_staff_may_open_the_page(point, who):
    user = {
        "customer": lambda: CustomerProfileFactory().user,
        "partner_owner": lambda: PartnerFactory(pickup_point=point).owner,
        "inactive": lambda: PointStaffFactory(pickup_point=point, is_active=False).user,
        "staff": lambda: UserFactory(is_staff=True, is_superuser=True),
    }[who]()
    order = ready_pickup_order(point)
    client = as_(user)

    assert client.get(POINT).status_code == 403
    assert client.get(FRAGMENT).status_code == 403
    assert client.post(POINT, {"order": order.pk, "code": order.handover_code}).status_code == 403
    assert Order.objects.get(pk=order.pk).status == Status.READY


def test_anonymous_people_are_sent_to_log_in():
    response = Client().get(POINT)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize(
    "data", [{}, {"order": "x", "code": "1234"}, {"order": "1"}, {"order": "-3", "code": "1"}]
)
def test_bad_input_is_a_message_never_a_500(point, clerk, data):
    order = ready_pickup_order(point)
    response = as_(clerk).post(POINT, data, follow=True)
    assert response.status_code == 200
    assert len(messages_of(response)) == 1
    assert Order.objects.get(pk=order.pk).status == Status.READY


def test_an_order_that_is_not_waiting_is_explained(point, clerk):
    from orders.services import order_staff_cancel

    order = ready_pickup_order(point)
    order_staff_cancel(
        order_id=order.pk, actor=UserFactory(is_staff=True, is_superuser=True), reason="x"
    )
    refused = collect(as_(clerk), order, order.handover_code)
    assert messages_of(refused) == [
        f"#{order.pk} is not waiting to be collected (it may have been cancelled)."
    ]


def test_the_fragment_refreshes_the_lists(point, clerk):
    order = ready_pickup_order(point)
    fragment = as_(clerk, "ko").get(FRAGMENT)
    assert fragment.status_code == 200
    assert f'data-testid="waiting-{order.pk}"' in fragment.content.decode()
    assert "<html" not in fragment.content.decode()


def test_the_customer_is_told_to_show_the_code_at_the_point_with_its_hours(point):
    order = ready_pickup_order(point)
    customer = as_(order.customer.user)

    html = customer.get(f"/orders/{order.pk}/").content.decode()

    assert "Show this code at 합정역 편의점 when you collect your order" in html
    assert "Show this code to the vendor" not in html
    assert "Every day 00:00–23:59" in html


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("김민지", "민지"),
        ("Anna Park", "Anna"),
        ("박 순자", "순자"),
        ("", "Customer"),
        ("이", "이"),
    ],
)
def test_first_names(name, shown):
    assert first_name(UserFactory.build(name=name)) == shown


def test_the_demo_has_a_point_clerk_once():
    point = always_open_point()
    assert point_staff_seed(password="demo-pass-1234") == 1
    assert point_staff_seed(password="demo-pass-1234") == 0
    user = get_user_model().objects.get(email=POINT_STAFF[0])
    assert user.check_password("demo-pass-1234")
    assert PointStaff.objects.get(user=user).pickup_point == point


def test_staff_link_people_to_a_point_in_the_admin(point, client):
    admin = UserFactory(is_staff=True, is_superuser=True)
    person = UserFactory()
    client.force_login(admin)
    assert client.get("/admin/partners/pointstaff/add/").status_code == 200
    added = client.post(
        "/admin/partners/pointstaff/add/",
        {"user": person.pk, "pickup_point": point.pk, "is_active": "on"},
    )
    assert added.status_code == 302, added.content
    assert PointStaff.objects.get(user=person).pickup_point == point
    listing = client.get("/admin/partners/pointstaff/?q=" + person.email)
    assert person.email in listing.content.decode()
