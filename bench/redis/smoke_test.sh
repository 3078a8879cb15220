#!/usr/bin/env bash
# Smoke test of the Redis + Lua baseline (ctest label `bench`):
#   1. starts redis-server on a free loopback port (AOF on, everysec, no RDB)
#      in a temporary directory;
#   2. feeds edge_cases.ndjson (hand-written SPEC corner cases) 3 events per
#      call, so that T crosses days between calls, with redis_baseline --check
#      (every profile and KPI against the batch evaluator);
#   3. the same with a generated stream;
#   4. restarts Redis from its AOF and checks again without feeding;
#   5. corrupts one user's points and expects the check to fail — a check
#      that cannot fail proves nothing.
# usage: smoke_test.sh REDIS_SERVER REDIS_BASELINE TIERSTREAM
set -euo pipefail
redis_server=$1 baseline=$2 tierstream=$3
here=$(cd "$(dirname "$0")" && pwd)
redis_cli=$(dirname "$redis_server")/redis-cli
command -v "$redis_cli" >/dev/null || redis_cli=redis-cli

tmp=$(mktemp -d)
pid=""
port=""
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    "$redis_cli" -p "$port" shutdown nosave >/dev/null 2>&1 || kill "$pid"
    wait "$pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

start_redis() {
  local tries
  for tries in 1 2 3 4 5; do
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    "$redis_server" --port "$port" --bind 127.0.0.1 --appendonly yes --appendfsync everysec \
      --dir "$tmp" --save '' --logfile "$tmp/redis.log" &
    pid=$!
    for _ in $(seq 50); do
      if "$redis_cli" -p "$port" ping 2>/dev/null | grep -q PONG; then return 0; fi
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  echo "smoke_test: redis-server did not start" >&2
  cat "$tmp/redis.log" >&2 || true
  return 1
}

stop_redis() {
  "$redis_cli" -p "$port" shutdown >/dev/null 2>&1 || true  # flushes the AOF
  wait "$pid" 2>/dev/null || true
  pid=""
}

"$tierstream" gen --users 2000 --days 40 --events 50000 --invalid-rate 0.002 >"$tmp/events.ndjson"

start_redis
echo "== edge cases, 3 events per call"
"$baseline" --port "$port" --batch 3 --check "$here/edge_cases.ndjson"

echo "== generated stream"
"$baseline" --port "$port" --flush --check "$tmp/events.ndjson"

echo "== restart from the AOF and check again"
stop_redis
start_redis
"$baseline" --port "$port" --check-only "$tmp/events.ndjson"

echo "== a corrupted profile must fail the check"
"$redis_cli" -p "$port" --scan --pattern 'ts:u:*' >"$tmp/user_keys"
user_key=$(head -n 1 "$tmp/user_keys")
"$redis_cli" -p "$port" hincrby "$user_key" pt 1 >/dev/null
if "$baseline" --port "$port" --check-only --max-listed 3 "$tmp/events.ndjson"; then
  echo "smoke_test: the check passed on a corrupted profile" >&2
  exit 1
fi
echo "smoke_test: ok"
