"""How the soak judges a run: percentiles, lost events, objectives, and its part of the doc."""

import asyncio
import json
import time

import pytest
from websockets.exceptions import ConnectionClosedError
from websockets.frames import Close

from bench.report import knee_markdown, soak_markdown
from bench.soak import (
    OBJECTIVES,
    GeneratorStats,
    Histogram,
    Segment,
    SoakUser,
    evaluate,
    live_delivery,
    live_digest,
    source_address,
)


def test_histogram_percentiles_are_within_two_percent_and_merge_across_processes():
    first, second = Histogram(), Histogram()
    for ms in range(1, 501):
        first.add(ms)
    for ms in range(501, 1001):
        second.add(ms)

    merged = Histogram()
    merged.merge(Histogram({str(k): v for k, v in first.buckets.items()}))
    merged.merge(second)

    assert merged.count == 1000
    assert merged.percentile(0.50) == pytest.approx(500, rel=0.02)
    assert merged.percentile(0.99) == pytest.approx(990, rel=0.02)
    assert Histogram().percentile(0.99) == 0.0


def test_every_user_has_a_loopback_address_of_its_own():
    addresses = [source_address(index) for index in range(20_000)]

    assert len(set(addresses)) == len(addresses)
    assert all(address.startswith("127.") for address in addresses)
    # No network (.0) or broadcast (.255) address as the last part.
    assert all(0 < int(address.split(".")[3]) < 255 for address in addresses)


class ClosedSocket:
    """A /ws/me/ that the server closes with `code` before sending anything."""

    def __init__(self, code):
        self.code = code

    def __aiter__(self):
        return self

    async def __anext__(self):
        raise ConnectionClosedError(Close(self.code, ""), None)


@pytest.mark.parametrize(("code", "reconnects"), [(4401, False), (1011, True)])
def test_a_socket_signed_out_by_the_server_does_not_reconnect(monkeypatch, code, reconnects):
    config = {"bases": ["http://127.0.0.1:1"], "seed": 1, "end_at": time.time() + 60}
    stats = GeneratorStats()
    user = SoakUser(index=0, config=config, catalog=None, stats=stats)
    reopened = []

    async def reopen(base):
        reopened.append(base)

    async def no_wait(seconds):
        pass

    monkeypatch.setattr(user.me, "open", reopen)
    monkeypatch.setattr("bench.soak.asyncio.sleep", no_wait)
    user.me.ws = ClosedSocket(code)
    asyncio.run(user.me.read())

    assert bool(reopened) is reconnects
    if reconnects:
        assert stats.socket_drops == {"me: ConnectionClosedError": 1}
    else:
        assert stats.socket_failures == {"me: closed 4401": 1}
        assert not stats.socket_drops


def generator(segments, *, submitted=()):
    digest = live_digest(segments)
    digest["submitted"] = sorted(set(digest["submitted"]) | set(submitted))
    return {"live": digest}


def test_a_live_subscriber_missing_an_event_others_saw_is_counted_as_lost():
    complete = Segment(started=0, ids=["1-0", "2-0", "3-0", "4-0"])
    complete.submitted_ids = ["1-0", "3-0"]
    gap = Segment(started=0, ids=["2-0", "4-0"])
    late = Segment(started=0, ids=["3-0", "4-0"])
    submissions = [{"public": True}, {"public": True}, {"public": False}]

    delivery = live_delivery(
        [generator([complete, gap]), generator([late])], submissions=submissions
    )

    # The second subscriber's window holds 2-0, 3-0 and 4-0; it saw two.
    assert delivery["subscriber_expected"] == 4 + 3 + 2
    assert delivery["subscriber_received"] == 4 + 2 + 2
    assert delivery["subscriber_missing"] == 1
    assert delivery["public_submissions"] == 2
    assert delivery["public_submissions_unseen"] == 0


def test_a_public_submission_nobody_saw_is_counted_as_lost():
    seen = Segment(started=0, ids=["1-0"])
    seen.submitted_ids = ["1-0"]

    delivery = live_delivery([generator([seen])], submissions=[{"public": True}] * 3)

    assert delivery["subscriber_missing"] == 0
    assert delivery["public_submissions_unseen"] == 2


def run_result(**changes):
    load = {
        "http": {"submit": {"per_s": 2.5}},
        "combined": {
            "cached": {"p99_ms": 40.0},
            "database": {"p99_ms": 120.0},
            "write": {"p99_ms": 300.0},
        },
        "events": {"p99_ms": 80.0},
        "sockets": {"connect_failures": {}},
        "me_delivery": {"missing": 0},
        "live_delivery": {"subscriber_missing": 0, "public_submissions_unseen": 0},
    }
    load["http"].update(
        {
            group: {"status": {"2xx": 10}}
            for group in ("sign_in", "catalogue", "search", "product", "leaderboard", "home_stats")
        }
    )
    load["http"]["submit"]["status"] = {"2xx": 5}
    result = {
        "load": load,
        "resources": {"instances": [{"rss_mb_max": 180.0}, {"rss_mb_max": 190.0}]},
        "invariants": {"points_equal_ledger_drift": 0, "counts_equal_rankings_drift": 0},
    }
    for path, value in changes.items():
        *parents, leaf = path.split(".")
        target = result
        for key in parents:
            target = target[key]
        target[leaf] = value
    return result


def test_a_clean_run_meets_every_objective():
    targets = evaluate(run_result())

    assert set(targets) == set(OBJECTIVES)
    assert all(target["met"] for target in targets.values()), targets
    assert targets["instance_rss_mb_max"]["value"] == 190.0


@pytest.mark.parametrize(
    ("change", "value", "missed"),
    [
        ("load.http.search.status", {"2xx": 9, "5xx": 1}, "http_5xx_or_no_answer"),
        ("load.http.product.status", {"2xx": 9, "no answer": 1}, "http_5xx_or_no_answer"),
        ("load.sockets.connect_failures", {"me: TimeoutError": 1}, "socket_connect_failures"),
        ("load.me_delivery.missing", 1, "events_lost"),
        ("load.live_delivery.public_submissions_unseen", 1, "events_lost"),
        ("load.combined.cached.p99_ms", 100.0, "cached_reads_p99_ms"),
        ("load.combined.write.p99_ms", 501.0, "submissions_p99_ms"),
        ("load.events.p99_ms", 1000.0, "event_delivery_p99_ms"),
        ("resources.instances", [{"rss_mb_max": 500.0}], "instance_rss_mb_max"),
        ("invariants.points_equal_ledger_drift", 3, "points_equal_ledger_drift"),
    ],
)
def test_each_objective_is_missed_by_what_breaks_it(change, value, missed):
    targets = evaluate(run_result(**{change: value}))

    assert [name for name, target in targets.items() if not target["met"]] == [missed]


def test_a_kind_of_request_that_never_got_an_answer_misses_its_objective():
    result = run_result()
    result["load"]["combined"]["cached"] = {"count": 0, "p99_ms": 0.0}
    result["load"]["events"] = {"count": 0, "p99_ms": 0.0}

    targets = evaluate(result)

    assert targets["cached_reads_p99_ms"] == {"value": None, "target": "< 100", "met": False}
    assert targets["event_delivery_p99_ms"]["met"] is False


def soak_result(users: int, *, met: bool) -> dict:
    status = {"2xx": 100}
    histogram = {"kind": "cached", "per_s": 12.5, "p50_ms": 8.0, "p95_ms": 30.0, "p99_ms": 61.0}
    return {
        "started_at": f"2031-01-0{users // 1000}T00:00:00+00:00",
        "commit": "abc1234",
        "machine": {
            "cpu": "Test CPU",
            "cores": 2,
            "load_average_at_start": [1.5],
            "load_average_at_end": [2.5],
        },
        "settings": {
            "users": users,
            "instances": 2,
            "duration_s": 120,
            "ramp_s": 30,
            "generators": 2,
            "web_concurrency": "2",
            "db_pool_max": 10,
            "redis": "a private redis-server for this run",
        },
        "load": {
            "http": {
                "catalogue": {**histogram, "count": 1500, "status": status},
                "submit": {**histogram, "kind": "write", "count": 300, "status": status},
            },
            "events": {"count": 9000, "p50_ms": 20.0, "p95_ms": 70.0, "p99_ms": 110.0},
            "pong": {"count": 50, "p50_ms": 1.0, "p99_ms": 9.0},
            "generator_loop_lag": {"p50_ms": 0.5, "p99_ms": 30.0},
            "me_delivery": {
                "expected": 280,
                "received": 280,
                "missing": 0,
                "missing_after_gap": 0,
                "duplicates": 0,
                "received_by_type": {"points.updated": 250},
            },
            "live_delivery": {
                "subscriber_expected": 9000,
                "subscriber_received": 9000,
                "duplicates": 0,
                "public_submissions": 297,
                "public_submissions_seen": 297,
                "received_by_type": {"leaderboard.updated": 700},
            },
            "sockets": {
                "connects": 1400,
                "connect_failures": {},
                "drops": {},
                "returns": 190,
                "resyncs": 0,
            },
            "live_users": 334,
            "generators": [{"cpu_seconds": 30.0}, {"cpu_seconds": 30.0}],
        },
        "resources": {
            "instances": [
                {
                    "cpu_cores_mean": 0.25,
                    "cpu_cores_max": 0.5,
                    "rss_mb_max": 150.0,
                    "open_connections_max": 700,
                }
            ]
            * 2,
            "db_connections_max": 12,
            "db_active_max": 4,
            "database_growth_mb": 6.0,
            "redis_memory_mb_max": 20.0,
            "redis_commands_per_s": 500.0,
        },
        "server_cache": [{"source": "/metrics", "counts": {"products": {"hits": 95, "misses": 5}}}],
        "targets": {
            "cached_reads_p99_ms": {"value": 61.0, "target": "< 100", "met": met},
            "database_reads_p99_ms": {"value": 90.0, "target": "< 500", "met": True},
            "submissions_p99_ms": {"value": 61.0, "target": "< 500", "met": True},
            "http_5xx_or_no_answer": {"value": 0, "target": "== 0", "met": True},
            "socket_connect_failures": {"value": 0, "target": "== 0", "met": True},
            "events_lost": {"value": 0, "target": "== 0", "met": True},
            "event_delivery_p99_ms": {"value": 110.0, "target": "< 1000", "met": True},
            "instance_rss_mb_max": {"value": 150.0, "target": "< 500", "met": True},
        },
    }


def test_the_soak_section_shows_the_run_the_knee_and_the_model():
    latest = soak_result(2000, met=True)
    doc = soak_markdown(latest, [soak_result(1000, met=True), latest, soak_result(4000, met=False)])

    assert "2,000 users on 2 instances for 120 s (30 s ramp)" in doc
    assert "| catalogue | cached | 12.5 | 8 | 30 | 61 | 1,500 | 2xx 100 |" in doc
    assert "p99 110.0 ms" in doc
    assert "9,000 of the 9,000 events" in doc
    assert "297 of 297 public submissions" in doc
    assert "Instance 2: CPU 0.25 cores on average" in doc
    assert "| cached reads p99 ms < 100 | 61.0 | met |" in doc
    assert "| 4,000 |" in doc and "| no | cached reads p99 ms |" in doc
    # Servers 0.5 cores; generators 60 CPU s over 120 s; client lag, DB connections, Redis.
    assert "| 0.50 | 0.50 | 30.0 | 12 | 500.0 | 150.0 | yes | - |" in doc
    assert "Largest user count that met every objective: 2,000." in doc
    # 0.5 cores over 2,000 users; 500 commands a second over 2,000 users.
    assert "| server CPU (cores, mean) | 0.25 |" in doc
    assert "| Redis commands a second | 250.0 |" in doc
    assert "| Redis commands a day, if held around the clock | 21,600,000 |" in doc
    assert "| instances (at the knee's 1,000 users per instance) | 1.00 |" in doc
    assert "One user-hour costs 900 Redis commands" in doc  # 500 * 3600 / 2000
    assert "covers 11.1 user-hours a day, 0.46 users kept online" in doc
    assert "From the soak at 2,000 users on 2 instances (the largest that met" in doc
    assert "95.0% of lookups hit" in doc
    assert "250 point changes" in doc and "334 subscribers" in doc


def test_the_knee_says_so_when_no_count_met_every_objective():
    doc = knee_markdown([soak_result(1000, met=False)])

    assert "No user count met every objective." in doc


def test_with_no_run_meeting_every_objective_the_model_scales_from_the_smallest():
    small, large = soak_result(1000, met=False), soak_result(4000, met=False)
    large["resources"]["redis_commands_per_s"] = 1.0

    doc = soak_markdown(large, [large, small])

    assert "From the soak at 1,000 users on 2 instances (the smallest run" in doc
    assert "| Redis commands a second | 500.0 |" in doc


def test_the_performance_doc_carries_the_soak_and_its_knee_when_they_were_run(tmp_path):
    from bench.report import performance_doc_write
    from bench.tests.test_performance_doc import RESULT

    (tmp_path / "latest.json").write_text(json.dumps(RESULT))
    doc_path = tmp_path / "performance.md"
    performance_doc_write(result_path=tmp_path / "latest.json", doc_path=doc_path)
    assert "## Soak" not in doc_path.read_text()

    (tmp_path / "soak-latest.json").write_text(json.dumps(soak_result(2000, met=True)))
    (tmp_path / "soak-1000u.json").write_text(json.dumps(soak_result(1000, met=True)))
    (tmp_path / "soak-2000u.json").write_text(json.dumps(soak_result(2000, met=False)))
    performance_doc_write(result_path=tmp_path / "latest.json", doc_path=doc_path)

    doc = doc_path.read_text()
    assert "| `healthz` |" in doc and "812.3" in doc
    assert "## Soak: a community on two instances" in doc
    assert "Largest user count that met every objective: 1,000." in doc


def test_the_soak_section_says_whether_the_leaderboards_were_in_redis():
    built = soak_result(2000, met=True)
    built["warm"] = {"leaderboards": {"all": 2000}}
    older = soak_result(2000, met=True)

    assert "the Redis leaderboards were built before the users arrived" in soak_markdown(built)
    assert "read from the SQL fallback" not in soak_markdown(built)
    assert "read from the SQL fallback" in soak_markdown(older)
