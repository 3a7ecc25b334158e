import pytest

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "url",
    [
        "/api/admin/audit-log/?target_type=%00",
        "/api/admin/products/?search=%00",
        "/api/admin/products/?search=a%1Fb",
        "/api/admin/products/?se%00arch=a",
        "/api/products/?search=%7F",
        "/api/products/?category=%C2%85",
        "/api/products/%00/",
        "/admin/%01",
    ],
)
def test_a_control_character_in_the_path_or_query_is_a_400_in_the_error_shape(staff_client, url):
    response = staff_client.get(url)

    assert response.status_code == 400, response.content
    assert response.json() == {
        "detail": "The path or a query parameter holds a control character.",
        "code": "control_character",
    }


def test_ordinary_unicode_in_the_query_still_searches(staff_client):
    response = staff_client.get("/api/products/", {"search": "café ☕"})
    assert response.status_code == 200
