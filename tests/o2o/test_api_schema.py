"""The OpenAPI schema says what the API answers (issue #13, item 8): lists as the page objects they
are, the nearby search as `{"results": [...]}`, the statement downloads as files, and every error
in the one `{"error": ...}` shape. The schemathesis run (test_schemathesis.py) checks the answers
against it."""

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

ERROR_REF = {"$ref": "#/components/schemas/Error"}


@pytest.fixture(scope="module")
def schema():
    return APIClient().get("/api/schema/", {"format": "json"}).json()


def _ok(schema, path, method="get", media_type="application/json"):
    return schema["paths"][path][method]["responses"]["200"]["content"][media_type]["schema"]


@pytest.mark.parametrize(
    "path",
    [
        "/api/orders/",
        "/api/vendor/orders/",
        "/api/statements/",
        "/api/partner/endpoints/",
        "/api/partner/deliveries/",
        "/api/partner/orders/",
        "/api/vendors/",
        "/api/products/",
    ],
)
def test_paginated_lists_are_documented_as_pages(schema, path):
    ref = _ok(schema, path)["$ref"].rsplit("/", 1)[-1]
    page = schema["components"]["schemas"][ref]
    assert page["type"] == "object"
    assert {"count", "next", "previous", "results"} <= set(page["properties"])
    assert page["properties"]["results"]["type"] == "array"
    names = {p["name"] for p in schema["paths"][path]["get"].get("parameters", [])}
    assert {"page", "page_size"} <= names


def test_own_stock_is_still_a_plain_list(schema):
    assert _ok(schema, "/api/vendors/me/stock/")["type"] == "array"


def test_nearby_is_an_object_with_results(schema):
    ref = _ok(schema, "/api/vendors/nearby/")["$ref"].rsplit("/", 1)[-1]
    results = schema["components"]["schemas"][ref]["properties"]["results"]
    assert results["type"] == "array"


@pytest.mark.parametrize("fmt,media_type", [("csv", "text/csv"), ("pdf", "application/pdf")])
def test_statement_downloads_are_binary_files(schema, fmt, media_type):
    path = f"/api/statements/{{settlement_id}}.{fmt}"
    assert _ok(schema, path, media_type=media_type) == {"type": "string", "format": "binary"}
    assert schema["paths"][path]["get"]["operationId"] == f"statements_download_{fmt}"
    assert "404" in schema["paths"][path]["get"]["responses"]


def test_every_operation_documents_its_errors_in_the_one_shape(schema):
    error = schema["components"]["schemas"]["Error"]
    assert error["required"] == ["error"]
    assert error["properties"]["error"]["required"] == ["code", "message"]
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            for code in ("400", "401", "403", "404", "429", "503"):
                assert code in responses, (method, path, code)
            for code, response in responses.items():
                if int(code) >= 400 and not (path == "/api/tracking/pings/" and code == "422"):
                    assert response["content"]["application/json"]["schema"] == ERROR_REF, (
                        method,
                        path,
                        code,
                    )


def test_conflicts_and_unavailable_are_documented_where_raised(schema):
    paths = schema["paths"]
    assert "409" in paths["/api/vendor/orders/{order_id}/accept/"]["post"]["responses"]
    assert "409" in paths["/api/vendors/me/stock/"]["patch"]["responses"]
    assert "503" in paths["/api/orders/"]["post"]["responses"]
    assert "422" in paths["/api/tracking/pings/"]["post"]["responses"]


def test_the_schema_validates_without_warnings(tmp_path):
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "s.yaml"))


@pytest.mark.django_db
def test_an_unknown_api_path_is_a_404_in_the_one_shape():
    response = APIClient().get("/api/vendors/no such vendor/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["error"]["code"] == "not_found"
