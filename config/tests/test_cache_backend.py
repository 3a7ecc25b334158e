import pytest
from django.core.cache import cache
from django.test import RequestFactory, override_settings
from django_ratelimit.core import is_ratelimited

from config.tests.private_redis import dead_redis_caches


@pytest.mark.parametrize("dead_redis", [False, True])
def test_django_ratelimit_counts_and_limits_on_redis_and_on_the_fallback(dead_redis):
    overrides = {"RATELIMIT_ENABLE": True}
    if dead_redis:
        overrides["CACHES"] = dead_redis_caches()
    request = RequestFactory().get("/api/products/", REMOTE_ADDR="203.0.113.9")
    with override_settings(**overrides):
        verdicts = [
            is_ratelimited(request, group="api", key="ip", rate="2/m", increment=True)
            for _ in range(3)
        ]
    assert verdicts == [False, False, True]


def test_the_fallback_cache_answers_the_whole_django_cache_api():
    with override_settings(CACHES=dead_redis_caches()):
        assert cache.add("a", 1) is True
        assert cache.add("a", 2) is False
        cache.set_many({"b": 2, "c": 3})
        assert cache.get_many(["a", "b", "c", "d"]) == {"a": 1, "b": 2, "c": 3}
        assert cache.has_key("b")
        assert cache.incr("a", 5) == 6
        assert cache.decr("a") == 5
        assert cache.touch("a", 60)
        cache.delete_many(["b", "c"])
        assert cache.get("b", "gone") == "gone"
        assert cache.delete("a")
        assert cache.get_or_set("e", lambda: "made") == "made"
        assert cache.delete_pattern("e*") == 1
        assert cache.ttl("e") is None
        cache.clear()
