"""Metrics the game reads from apps above it: the app that owns the figure registers it.

A source is `source(user=...) -> int`, for one user after their action; its `source_many` is
`source_many(user_ids=[...]) -> {user_id: value}`, the same figure for a batch of users in a
fixed number of queries, for re-evaluation (a user it leaves out has 0).
"""

from collections.abc import Callable

MetricSource = Callable[..., int]
MetricSourceMany = Callable[..., dict[int, int]]

_metric_sources: dict[str, tuple[MetricSource, MetricSourceMany]] = {}


def metric_source_register(
    *, metric: str, source: MetricSource, source_many: MetricSourceMany
) -> None:
    _metric_sources[metric] = (source, source_many)


def metric_source_value(*, metric: str, user: object) -> int:
    return _metric_sources[metric][0](user=user)


def metric_source_values(*, metric: str, user_ids: list[int]) -> dict[int, int]:
    return _metric_sources[metric][1](user_ids=user_ids)
