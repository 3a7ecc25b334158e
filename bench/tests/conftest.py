"""The bench's smoke tests each run on a database of their own."""

import os
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest


@pytest.fixture
def scratch_database_url(request):
    """A database next to the suite's, named after the test module, dropped afterwards."""
    url = urlsplit(os.environ["DATABASE_URL"])
    name = f"{url.path.lstrip('/')}_{request.module.__name__.rsplit('.', 1)[-1]}"
    yield urlunsplit(url._replace(path=f"/{name}"))
    with psycopg.connect(urlunsplit(url._replace(path="/postgres")), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
