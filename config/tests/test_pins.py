"""Code that overrides library internals names the versions it was written against, and
requirements.txt pins exactly those, saying which file depends on each pin."""

import re
from importlib.metadata import version
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OVERRIDES = [
    "config/handlers.py",
    "config/cache_backend.py",
    "config/metrics.py",
    "config/server.py",
    "realtime/consumers.py",
]
PIN = re.compile(r"([A-Za-z0-9_.-]+)==([0-9][^\s,;)]*)")
REQUIREMENT = re.compile(r"([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==(\S+)")


def requirements() -> dict[str, tuple[str, str]]:
    """Each pinned name (lower case) with its version and the comment lines just above it."""
    pins, comments = {}, []
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        if line.startswith("#"):
            comments.append(line)
        elif match := REQUIREMENT.match(line):
            pins[match[1].lower()] = (match[2], "\n".join(comments))
            comments = []
    return pins


@pytest.mark.parametrize("path", OVERRIDES)
def test_each_override_names_pins_that_requirements_hold_and_attribute_to_it(path):
    pinned_lines = [
        line for line in (ROOT / path).read_text().splitlines() if line.startswith("# Pinned:")
    ]
    assert len(pinned_lines) == 1, f"{path} needs one '# Pinned:' line"
    named = PIN.findall(pinned_lines[0])
    assert named
    pins = requirements()
    for name, pinned in named:
        assert name.lower() in pins, f"{name} is not pinned in requirements.txt"
        required, comment = pins[name.lower()]
        assert required == pinned, f"{path} was written against {name} {pinned}, not {required}"
        assert path in comment, f"requirements.txt does not say {path} depends on {name}"


def test_the_installed_versions_are_the_pinned_ones():
    for path in OVERRIDES:
        line = next(
            line for line in (ROOT / path).read_text().splitlines() if line.startswith("# Pinned:")
        )
        for name, pinned in PIN.findall(line):
            assert version(name) == pinned, f"{path} expects {name}=={pinned}"
