"""Writes of the catalogue."""

from products.models import UserProductSearch
from products.selectors import normalize_query


def product_search_record(*, user_id: int | None, query: str, result_count: int) -> None:
    """Remember who searched what, for stats and the searches-made achievement."""
    UserProductSearch.objects.create(
        user_id=user_id, query=normalize_query(query)[:200], result_count=result_count
    )
