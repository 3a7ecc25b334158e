"""The schema documents the error answers every operation can give, in the shared error shape."""

import json

import pytest
from django.test import override_settings

pytestmark = pytest.mark.django_db


@pytest.fixture
def schema(api_client) -> dict:
    return api_client.get("/api/schema/?format=json").json()


def _operations(schema: dict):
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            yield path, method, operation


def test_every_operation_documents_400_401_429_and_503_as_errors(schema):
    assert schema["components"]["schemas"]["Error"]["required"] == ["detail", "code"]
    for _path, _method, operation in _operations(schema):
        for status in ("400", "401", "429", "503"):
            content = operation["responses"][status]["content"]["application/json"]
            assert content["schema"] == {"$ref": "#/components/schemas/Error"}


def test_input_paths_and_pages_document_400_and_404(schema):
    products = schema["paths"]["/api/products/"]["get"]["responses"]
    detail = schema["paths"]["/api/products/{id}/"]["get"]["responses"]
    assert {"400", "404"} <= set(products)
    assert "404" in detail
    assert "400" in schema["paths"]["/api/rankings/"]["post"]["responses"]


def test_403_on_employee_paths_and_writes_only(schema):
    assert "403" in schema["paths"]["/api/admin/metrics/"]["get"]["responses"]
    assert "403" in schema["paths"]["/api/rankings/"]["post"]["responses"]
    assert "403" not in schema["paths"]["/api/products/"]["get"]["responses"]


def _employee_paths(schema: dict) -> list[str]:
    return [path for path in schema["paths"] if path.startswith(("/api/admin/", "/api/tools/"))]


@override_settings(API_SCHEMA_EMPLOYEE_OPERATIONS_PUBLIC=False)
def test_production_describes_the_employee_api_to_employees_only(
    api_client, user_client, staff_client
):
    public = api_client.get("/api/schema/?format=json").json()
    customer = user_client.get("/api/schema/?format=json").json()
    employee = staff_client.get("/api/schema/?format=json").json()

    assert _employee_paths(public) == _employee_paths(customer) == []
    assert "/api/rankings/" in public["paths"] and "/api/customer/me" in public["paths"]
    assert "/api/admin/metrics/" in employee["paths"]
    assert any(path.startswith("/api/tools/") for path in employee["paths"])
    # Shapes only the employee API uses are not described to the public either.
    hidden = set(employee["components"]["schemas"]) - set(public["components"]["schemas"])
    assert hidden
    assert "Error" in public["components"]["schemas"]
    assert "/api/admin/" not in json.dumps(public)


def test_development_describes_every_operation_to_anyone(schema):
    assert "/api/admin/metrics/" in schema["paths"]
