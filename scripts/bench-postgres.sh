#!/usr/bin/env bash
# Compares, in one run, QR logins per second on bbolt, on PostgreSQL with one instance, and on
# PostgreSQL with two instances behind one address, at the same number of phones: the figures
# of docs/performance.md. It starts a throwaway PostgreSQL cluster with the server's default
# durability (fsync and synchronous_commit on), on a free port, and removes it at the end.
# Each run also prints mcert's CPU per login and its cost ratio (that over the in-process
# ceiling's CPU per login, measured in the same run).
# Usage: scripts/bench-postgres.sh [citizens, default 10000] [duration, default 20s] [phones, default 64]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
n=${1:-10000}
duration=${2:-20s}
phones=${3:-64}

pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
if [ ! -x "$pgbin/initdb" ]; then
  echo "no PostgreSQL server binaries: apt-get install postgresql (as .ci/run does)" >&2
  exit 1
fi

work=$(mktemp -d /tmp/mcert-bench-pg.XXXXXX)
chmod 755 "$work"
as=()
if [ "$(id -u)" = 0 ]; then # PostgreSQL refuses to run as root
  as=(runuser -u nobody --)
  mkdir "$work/pg" && chown nobody "$work/pg"
else
  mkdir "$work/pg"
fi
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
stop() {
  "${as[@]}" "$pgbin/pg_ctl" -D "$work/pg/data" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap stop EXIT

echo "== a PostgreSQL cluster on 127.0.0.1:$port ($pgbin), default durability"
"${as[@]}" "$pgbin/initdb" -D "$work/pg/data" -U mcert --auth=trust -E UTF8 >/dev/null
"${as[@]}" "$pgbin/pg_ctl" -D "$work/pg/data" -l "$work/pg/log" -w \
  -o "-p $port -k $work/pg -c listen_addresses=127.0.0.1 -c max_connections=200" start >/dev/null
url="postgres://mcert@127.0.0.1:$port/postgres"
"${as[@]}" "$pgbin/psql" -h 127.0.0.1 -p "$port" -U mcert -d postgres -Atc \
  "SELECT 'fsync=' || current_setting('fsync') || ', synchronous_commit=' || current_setting('synchronous_commit')"

go build -o "$work/mcert" ./cmd/mcert
echo "== seeding $n citizens into bbolt and into PostgreSQL"
"$work/mcert" bench seed --data "$work/bolt" --n "$n"
"$work/mcert" bench seed --data "$work/postgres" --store "$url" --n "$n"
# A database in service has its planner statistics and its checkpoint behind it; a freshly
# loaded one would plan without statistics until autovacuum's first round, a minute later.
"${as[@]}" "$pgbin/psql" -h 127.0.0.1 -p "$port" -U mcert -d postgres -qc "VACUUM ANALYZE" -c "CHECKPOINT"

run() { # name, then bench run's flags
  local name=$1
  shift
  echo "== $name: $phones phones for $duration"
  "$work/mcert" bench run --c "$phones" --duration "$duration" --json "$@" >"$work/$name.json"
  jq -r '"   \(.ops_per_second | floor) logins/s, p50 \(.latency_ms.p50) ms, p99 \(.latency_ms.p99) ms, \(.error_count) errors, mcert CPU \(.server.cpu_seconds | floor) s (\(.server.cpu_ms_per_op * 1000 | round / 1000) ms per login, cost ratio \(.cost_ratio * 100 | round / 100)), other processes (PostgreSQL) \(.others_cpu_seconds | floor) s, stolen by the hypervisor \(.stolen_cpu_seconds | floor) s"' "$work/$name.json"
}
run bolt --data "$work/bolt"
run postgres-1 --data "$work/postgres" --store "$url"
run postgres-2 --data "$work/postgres" --store "$url" --instances 2

echo "== summary (logins/s at $phones phones, same run)"
jq -rs --arg names "bolt postgres-1 postgres-2" '
  ($names | split(" ")) as $n
  | [.[] | .ops_per_second] as $r
  | range(0; $r | length) as $i
  | "\($n[$i])\t\($r[$i] | floor)/s\t\(($r[$i] / $r[0] * 100) | floor)% of bbolt"' \
  "$work/bolt.json" "$work/postgres-1.json" "$work/postgres-2.json"
