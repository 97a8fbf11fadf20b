#!/usr/bin/env bash
# The whole showcase on this machine: start the API (embedded Redis + a worker), seed
# tiny through the API, run the Python examples and the JS provider against it, stop.
set -euo pipefail
cd "$(dirname "$0")/.."
PORT=${PORT_DELTA_API:-8000}
URL="http://127.0.0.1:${PORT}"
GOVLAB=.venv/bin/govlab

"$GOVLAB" serve --port "$PORT" --log-level warning &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null; wait "$SERVER" 2>/dev/null || true' EXIT
for _ in $(seq 1 120); do
  curl -fs "$URL/health" >/dev/null 2>&1 && break
  sleep 0.5
done

echo "== Delta Lake 4 through the API, as two roles"
.venv/bin/python examples/python/search_delta_redis.py --url "$URL"
echo "== Parquet built with PyArrow, registered and searched"
.venv/bin/python examples/python/load_parquet_example.py
echo "== Iceberg built with PyIceberg, registered and searched"
.venv/bin/python examples/python/load_iceberg_example.py

echo "== JS: smart-search DatabaseProvider over the API"
(
  cd examples/js
  test -d node_modules/@bilgrami/smart-search || npm ci --no-audit --no-fund
  for who in "clinician --attr id=C007" "business_user"; do
    # shellcheck disable=SC2086
    TOKEN=$("../../$GOVLAB" token --role $who)
    npx tsx search-delta-redis.ts --url "$URL" --token "$TOKEN" --query asthma
  done
)
