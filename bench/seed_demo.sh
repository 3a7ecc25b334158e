#!/usr/bin/env bash
# How long seed_demo takes for USERS customers and PRODUCTS products on a fresh database.
# SQLite by default (a throwaway file); set BENCH_DATABASE_URL to measure PostgreSQL instead,
# on an empty database (created for the purpose and dropped afterwards).
set -euo pipefail
cd "$(dirname "$0")/.."
USERS=${USERS:-10000}
PRODUCTS=${PRODUCTS:-1000}
DB_FILE=$(mktemp -u /tmp/rankly-bench-XXXXXX.sqlite3)
export DATABASE_URL=${BENCH_DATABASE_URL:-sqlite:///$DB_FILE}
trap 'rm -f "$DB_FILE"' EXIT
.venv/bin/python manage.py migrate --noinput -v 0
.venv/bin/python manage.py seed_demo --users "$USERS" --products "$PRODUCTS" | tail -2
