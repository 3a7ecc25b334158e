"""Metrics the game reads from apps above it: the app that owns the figure registers it.

A source is `source(user=...) -> int`, registered in the owning app's AppConfig.ready().
"""

from collections.abc import Callable
from typing import Any

MetricSource = Callable[..., int]

_metric_sources: dict[str, MetricSource] = {}


def metric_source_register(*, metric: str, source: MetricSource) -> None:
    _metric_sources[metric] = source


def metric_source_value(*, metric: str, user: Any) -> int:
    return _metric_sources[metric](user=user)
