"""Parts of a product's detail that apps above the catalogue supply.

The app that owns the figures registers a part in its AppConfig.ready(); the detail view adds
every registered part as a member of the answer.
"""

from collections.abc import Callable
from typing import Any

DetailPart = Callable[..., Any]

_detail_parts: dict[str, DetailPart] = {}


def product_detail_part_register(*, name: str, part: DetailPart) -> None:
    """`part(product_id=...)` answers the member `name` of a product's detail."""
    _detail_parts[name] = part


def product_detail_parts(*, product_id: int) -> dict[str, Any]:
    return {name: part(product_id=product_id) for name, part in _detail_parts.items()}
