"""Schemathesis fuzzes every operation of the OpenAPI schema, as a customer and as an employee."""

from collections.abc import Iterator

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import load_all_checks, not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from accounts.models import UserSession
from accounts.services import token_hash
from accounts.tests.factories import UserFactory
from products.tests.factories import ProductFactory

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

# A few examples per operation keep the whole run within a couple of minutes on two cores;
# derandomize makes every CI run try the same inputs.
FUZZ_SETTINGS = settings(
    max_examples=25,
    derandomize=True,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture
def api_schema(db) -> Iterator[schemathesis.BaseSchema]:
    # The application runs in this thread inside the test's transaction, as Django's test client
    # runs it: the start and end of a request must not close the connection holding it.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        for category in ("phones", "laptops"):
            ProductFactory.create_batch(3, category=category)
        yield schemathesis.openapi.from_wsgi("/api/schema/?format=json", WSGIHandler())
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def _fuzz(schema: schemathesis.BaseSchema, *, is_staff: bool) -> None:
    load_all_checks()
    user = UserFactory(is_staff=is_staff)
    token = f"fuzz-token-{user.pk}"
    headers = {"Authorization": f"Token {token}"}
    failures = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @FUZZ_SETTINGS
        # Valid inputs and invalid ones: the invalid must be refused with a documented 4xx.
        @given(
            case=st.one_of(
                operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
                operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
            )
        )
        def check(case) -> None:
            # The fuzzer signs out and deletes sessions too; every case starts signed in.
            UserSession.objects.get_or_create(user=user, token_hash=token_hash(token))
            case.call_and_validate(headers=headers, checks=CHECKS)

        try:
            check()
        except (Exception, BaseExceptionGroup) as failure:
            failures.append(f"{operation.label}: {failure}")
    print(f"fuzzed {operations} operations as {'an employee' if is_staff else 'a customer'}")
    assert not failures, "\n\n".join(failures)


def test_api_as_a_customer_never_fails_and_matches_its_schema(api_schema):
    _fuzz(api_schema, is_staff=False)


def test_api_as_an_employee_never_fails_and_matches_its_schema(api_schema):
    _fuzz(api_schema, is_staff=True)
