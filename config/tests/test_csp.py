"""HTML pages carry a Content-Security-Policy that their own scripts satisfy."""

from html.parser import HTMLParser

import pytest

from config.csp import CONTENT_SECURITY_POLICY

pytestmark = pytest.mark.django_db

PAGES = ["/admin/login/", "/admin/", "/admin/dashboard/", "/api/docs/"]


class _Scripts(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.inline_scripts = 0
        self.sources: list[str] = []
        self.handlers: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list) -> None:
        attributes = dict(attrs)
        self.handlers += [name for name in attributes if name.startswith("on")]
        if tag == "script":
            self._in_script = "src" not in attributes
            if "src" in attributes:
                self.sources.append(attributes["src"])

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_scripts += 1


@pytest.mark.parametrize("path", PAGES)
def test_html_pages_send_a_policy_that_allows_only_their_own_scripts(staff_session_client, path):
    response = staff_session_client.get(path, follow=True)

    assert response.status_code == 200
    assert response["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert "script-src 'self';" in CONTENT_SECURITY_POLICY
    scripts = _Scripts()
    scripts.feed(response.content.decode())
    assert scripts.inline_scripts == 0, path
    assert scripts.handlers == [], path
    assert all(src.startswith("/") and not src.startswith("//") for src in scripts.sources), (
        scripts.sources
    )


def test_the_docs_start_up_script_is_served_from_the_same_origin(staff_session_client):
    page = staff_session_client.get("/api/docs/").content.decode()
    scripts = _Scripts()
    scripts.feed(page)
    [start_up] = [src for src in scripts.sources if src.startswith("/api/docs/")]
    response = staff_session_client.get(start_up)
    assert response.status_code == 200
    assert "SwaggerUIBundle" in response.content.decode()


def test_json_answers_carry_no_page_policy(api_client):
    assert "Content-Security-Policy" not in api_client.get("/api/products/")


@pytest.fixture
def staff_session_client(client, staff_user):
    client.force_login(staff_user)
    return client
