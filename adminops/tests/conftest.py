import pytest

from config.caching import CacheType, cache_get_or_set


@pytest.fixture
def fill_cache():
    """Cache a value of a type and return a function telling whether it is still cached."""

    def fill(cache_type: CacheType) -> callable:
        cache_get_or_set(cache_type, "probe", lambda: "cached")

        def still_cached() -> bool:
            return cache_get_or_set(cache_type, "probe", lambda: "recomputed") == "cached"

        return still_cached

    return fill
