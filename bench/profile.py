"""Where the server's time goes, from a py-spy profile in collapsed-stack ("raw") format.

    python -m bench.profile bench/results/run-<stamp>/profile-writes.txt

Each sample is charged to the first layer found walking from the running frame towards the
root, so the shares add up to 100 % of the samples py-spy took (with --gil: of the CPU time in
Python, the resource one process is short of).
"""

import argparse
import re
from collections import Counter
from pathlib import Path

# (layer, substrings of "function (file:line)" frames), tried leaf first, first match wins.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("database driver (psycopg)", ("psycopg/", "psycopg_pool/")),
    ("ORM: queries built and rows turned into models", ("django/db/",)),
    ("cache client (django-redis, redis-py)", ("django_redis/", "redis/")),
    (
        "JSON rendering",
        ("rest_framework/renderers.py", "rest_framework/utils/encoders.py", "json/"),
    ),
    (
        "serializers",
        (
            "rest_framework/serializers.py",
            "rest_framework/fields.py",
            "rest_framework/relations.py",
            "rest_framework/utils/serializer_helpers.py",
        ),
    ),
    ("DRF dispatch: request, auth, permissions, negotiation", ("rest_framework/",)),
    (
        "middleware",
        (
            "django/middleware/",
            "django/contrib/sessions/",
            "django/contrib/auth/",
            "django/contrib/messages/",
            "whitenoise/",
            "django/utils/deprecation.py",
        ),
    ),
    (
        "sync/async hops (asgiref, thread pools)",
        ("asgiref/", "concurrent/futures/", "threading.py", "queue.py"),
    ),
    (
        "Django request handling, URL routing, responses",
        ("django/core/handlers/", "django/urls/", "django/http/", "django/dispatch/"),
    ),
    (
        "server: daphne, twisted, asyncio",
        ("daphne/", "twisted/", "autobahn/", "asyncio/", "selectors.py", "channels/"),
    ),
    (
        "Rankly code",
        (
            "accounts/",
            "products/",
            "rankings/",
            "gamification/",
            "adminops/",
            "realtime/",
            "config/",
        ),
    ),
    ("logging", ("logging/",)),
]
FRAME_FILE = re.compile(r"\(([^()]*?)(?::\d+)?\)$")


def layer_of(frames: list[str]) -> str:
    for frame in reversed(frames):
        match = FRAME_FILE.search(frame)
        where = match.group(1) if match else frame
        for layer, needles in LAYERS:
            if any(needle in where for needle in needles):
                return layer
    return "other (interpreter, stdlib)"


def summarise(path: Path, *, top: int = 15) -> dict:
    """Shares of samples per layer, and the functions that hold the most samples themselves."""
    layers: Counter[str] = Counter()
    functions: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [frame for frame in stack.split(";") if frame]
        samples = int(count)
        total += samples
        layers[layer_of(frames)] += samples
        if frames:
            functions[re.sub(r":\d+\)$", ")", frames[-1])] += samples
    share = {name: round(n / total, 3) for name, n in layers.most_common()} if total else {}
    hottest = (
        [[name, round(n / total, 3)] for name, n in functions.most_common(top)] if total else []
    )
    return {"samples": total, "layers": share, "hottest_functions": hottest}


def render(summary: dict) -> str:
    lines = [f"{summary['samples']} samples"]
    lines += [f"  {share:6.1%}  {layer}" for layer, share in summary["layers"].items()]
    lines.append("  hottest functions (self):")
    lines += [f"    {share:6.1%}  {name}" for name, share in summary["hottest_functions"]]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profiles", nargs="+", type=Path)
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    for path in args.profiles:
        print(path)
        print(render(summarise(path, top=args.top)))


if __name__ == "__main__":
    main()
