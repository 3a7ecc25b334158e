"""Dependencies point one way: a lower app never imports a higher one, and config imports no app."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Each app and the apps it may import, lowest first.
LAYERS = ["config", "accounts", "products", "gamification", "rankings", "adminops"]
ALLOWED = {app: set(LAYERS[:depth]) for depth, app in enumerate(LAYERS)}
# Realtime is the transport: it knows users and plumbing, no game rule. The apps above accounts
# send their events through it.
ALLOWED["realtime"] = {"accounts", "config"}
for app in ("products", "gamification", "rankings", "adminops"):
    ALLOWED[app].add("realtime")
APPS = set(ALLOWED)
# The ASGI entry point is where the project is put together: it mounts the WebSocket routes.
ENTRY_POINTS = {Path("config/asgi.py")}


def imported_modules(tree: ast.Module) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def app_modules(app: str) -> list[Path]:
    return [
        path.relative_to(ROOT)
        for path in sorted((ROOT / app).rglob("*.py"))
        if not {"tests", "migrations"} & set(path.relative_to(ROOT).parts)
    ]


def wrong_way_imports(app: str) -> list[str]:
    wrong = []
    for path in app_modules(app):
        if path in ENTRY_POINTS:
            continue
        for line, module in imported_modules(ast.parse((ROOT / path).read_text())):
            target = module.split(".")[0]
            if target in APPS and target != app and target not in ALLOWED[app]:
                wrong.append(f"{path}:{line} imports {module}")
    return wrong


@pytest.mark.parametrize("app", sorted(APPS))
def test_app_imports_only_the_apps_below_it(app):
    assert app_modules(app), f"{app} has no modules: the rule would pass on nothing"
    assert wrong_way_imports(app) == []


def test_the_rule_reads_both_forms_of_import():
    tree = ast.parse("from adminops.models import AuditLog\nimport rankings.caching\n")
    assert imported_modules(tree) == [(1, "adminops.models"), (2, "rankings.caching")]
