"""The OpenAPI schema tells the truth: schemathesis calls every operation of /api/schema/ as four
identities (anonymous, a customer, a vendor, staff) against the app in-process (Django's WSGI app),
in a seeded world (a vendor on shift with stock and a settled statement, a customer with orders),
and checks that no answer is a 5xx and that every answer's status code, content type and body are
the ones the schema documents.

Bounded: a fixed number of derandomised examples per operation and identity (about 1,100
requests, 35-50 s). Half of the examples name the world's real objects (its orders, lines,
statement, vendor) instead of random ids, so the calls reach the real code paths. Nothing is
excluded: the mutating calls (accepting, cancelling, refunding...) act on the world in turn, and a
later call finding an order in another state must then answer with a documented 409.
"""

from __future__ import annotations

import pytest
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from rest_framework.authtoken.models import Token

from tests.factories import AddressFactory, CustomerProfileFactory, StaffFactory
from tests.orders.conftest import open_shop, placed
from tests.payments.test_earnings import captured
from tests.payments.test_statements import settled

schemathesis = pytest.importorskip("schemathesis", reason="needs schemathesis (the dev extras)")

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

EXAMPLES = 6  # per operation and identity


@pytest.fixture
def in_process_app():
    """Django's WSGI app, serving requests inside the test's transaction (as Django's test client
    does: a request must not close the connection that holds it)."""
    from django.core.wsgi import get_wsgi_application

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield get_wsgi_application()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def world(vendor):
    buyer = CustomerProfileFactory().user
    AddressFactory(customer=buyer.customer, is_default=True)
    shop = open_shop(vendor)
    orders = {name: placed(shop, buyer) for name in ("customer", "vendor", "staff")}
    captured(vendor, amount=10_000, commission=1_000)
    settlement = settled(vendor)
    staff = StaffFactory()
    ids = {
        "settlement_id": settlement.pk,
        "slug": vendor.slug,
        "endpoint_id": 1,
    }
    identities = {"anonymous": (None, orders["customer"])}
    for name, user in (("customer", buyer), ("vendor", vendor.user), ("staff", staff)):
        identities[name] = (Token.objects.get_or_create(user=user)[0].key, orders[name])
    return identities, ids


def _known(ids: dict, order) -> dict:
    return {**ids, "order_id": order.pk, "line_id": order.lines.values_list("pk", flat=True)[0]}


def _fuzz(operation, *, headers: dict, known: dict, checks: list) -> None:
    """EXAMPLES cases of one operation as one identity; every other one names the world's
    objects in its path."""
    calls = {"n": 0}

    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def run(case):
        calls["n"] += 1
        if calls["n"] % 2 and case.path_parameters:
            case.path_parameters = {
                name: known.get(name, value) for name, value in case.path_parameters.items()
            }
        # Every TCP server gives the client's address; werkzeug's test client gives none.
        response = case.call(headers=headers, environ_base={"REMOTE_ADDR": "127.0.0.1"})
        case.validate_response(response, checks=checks, headers=headers)

    run()


def test_every_answer_is_documented_and_none_is_a_server_error(in_process_app, world):
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
    ]
    schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", in_process_app)
    operations = [result.ok() for result in schema.get_all_operations()]
    # Logging out revokes the identity's token: do it last, not before the other operations.
    operations.sort(key=lambda operation: operation.path == "/api/auth/token/revoke/")
    assert len(operations) >= 40
    identities, ids = world
    failures: list[str] = []

    for who, (token, order) in identities.items():
        headers = {"Authorization": f"Token {token}"} if token else {}
        known = _known(ids, order)
        for operation in operations:
            try:
                _fuzz(operation, headers=headers, known=known, checks=checks)
            except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - report them all
                failures.append(f"{who} {operation.label}: {exc}")

    assert not failures, "\n\n".join(failures)
