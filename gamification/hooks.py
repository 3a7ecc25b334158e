"""Metrics the game reads from apps above it: the app that owns the figure registers it.

A source is `source(user=...) -> int`, and its bulk form `bulk(user_ids=[...]) -> {id: int}`
(users without a row are missing), registered in the owning app's AppConfig.ready().
"""

from collections.abc import Callable
from typing import Any

MetricSource = Callable[..., int]
BulkMetricSource = Callable[..., dict[int, int]]

_metric_sources: dict[str, MetricSource] = {}
_bulk_sources: dict[str, BulkMetricSource] = {}


def metric_source_register(*, metric: str, source: MetricSource, bulk: BulkMetricSource) -> None:
    _metric_sources[metric] = source
    _bulk_sources[metric] = bulk


def metric_source_value(*, metric: str, user: Any) -> int:
    return _metric_sources[metric](user=user)


def metric_source_values(*, metric: str, user_ids: list[int]) -> dict[int, int]:
    return _bulk_sources[metric](user_ids=user_ids)
