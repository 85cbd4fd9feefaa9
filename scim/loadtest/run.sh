#!/usr/bin/env bash
# SCIM at scale: the requests identity providers make of a large org, timed
# against the real scimgate binary on databases filled by scimgate-fill, at
# several sizes, on SQLite and (when a DSN is given) PostgreSQL. For each
# database and size it fills a fresh database (GROUP_COUNT groups, each person
# in two), starts `scimgate serve` on it, and runs scimgate-scimbench:
# RUNS timed runs of each request after a warm-up. It prints the median
# latency of each request at each size, and how it grew from the smallest
# size to the largest (a linear cost grows by the ratio of the sizes).
#
#   scim/loadtest/run.sh                          # SIZES="25000 50000 100000" RUNS=9 GROUP_COUNT=20
#   SCIMGATE_BENCH_POSTGRES_DSN='postgres://postgres@127.0.0.1:5432/test?sslmode=disable' scim/loadtest/run.sh
#
# PostgreSQL runs need psql (each run fills a schema of its own, dropped
# afterwards); SCIMGATE_TEST_POSTGRES_DSN is used when
# SCIMGATE_BENCH_POSTGRES_DSN is not set. The raw numbers (p50, p90,
# totalResults, bytes) are kept in $OUT (default: a temporary file).
set -euo pipefail
cd "$(dirname "$0")/../.."

SIZES=${SIZES:-25000 50000 100000}
RUNS=${RUNS:-9}
GROUP_COUNT=${GROUP_COUNT:-20}
PORT_BASE=${PORT_BASE:-19300}
PG=${SCIMGATE_BENCH_POSTGRES_DSN:-${SCIMGATE_TEST_POSTGRES_DSN:-}}
MGMT=127.0.0.1:$PORT_BASE PROXY=127.0.0.1:$((PORT_BASE + 1))

work=$(mktemp -d)
OUT=${OUT:-$work/results.tsv}
pids=()
schemas=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for s in "${schemas[@]}"; do psql -q "$PG" -c "DROP SCHEMA IF EXISTS $s CASCADE" >/dev/null 2>&1 || true; done
  rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/scimgate" ./cmd/scimgate
go build -o "$work/fill" ./cmd/scimgate-fill
go build -o "$work/scimbench" ./cmd/scimgate-scimbench

dialects=sqlite
if [ -n "$PG" ]; then
  command -v psql >/dev/null || { echo "psql is needed for the PostgreSQL runs" >&2; exit 1; }
  dialects="sqlite postgres"
fi

wait_port() {
  for _ in $(seq 300); do
    (exec 3<>"/dev/tcp/${1%:*}/${1#*:}") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing listens on $1" >&2
  exit 1
}

echo "SCIM at scale: $(nproc) cores, sizes $SIZES, $GROUP_COUNT groups, $RUNS runs each" >&2
for dialect in $dialects; do
  for n in $SIZES; do
    if [ "$dialect" = sqlite ]; then
      dsn=$work/scim-$n.db
    else
      schema=scimbench_${n}_$$
      schemas+=("$schema")
      psql -q "$PG" -c "CREATE SCHEMA $schema" >/dev/null
      sep='?'; [[ $PG == *\?* ]] && sep='&'
      dsn="$PG${sep}search_path=$schema"
    fi
    start=$(date +%s)
    token=$("$work/fill" --database "$dsn" --users "$n" --groups "$GROUP_COUNT" --json 2>/dev/null |
      sed -n 's/.*"scim_token": *"\([^"]*\)".*/\1/p')
    [ -n "$token" ] || { echo "scimgate-fill failed on $dialect" >&2; exit 1; }
    echo "$dialect $n: filled in $(($(date +%s) - start)) s" >&2
    SCIMGATE_ACTIVITY_LOG_PATH=off "$work/scimgate" serve --database "$dsn" --upstream http://127.0.0.1:9 \
      --listen "$PROXY" --management-listen "$MGMT" 2>"$work/serve.log" &
    serve=$!
    pids+=("$serve")
    wait_port "$MGMT"
    "$work/scimbench" --url "http://$MGMT/scim/v2" --token "$token" --runs "$RUNS" --label "$dialect	$n" >>"$OUT"
    kill "$serve"
    wait "$serve" 2>/dev/null || true
    if [ "$dialect" = postgres ]; then
      psql -q "$PG" -c "DROP SCHEMA $schema CASCADE" >/dev/null
    else
      rm -f "$dsn" "$dsn-wal" "$dsn-shm"
    fi
  done
done

# The table: one row a request, the median in ms at each database and
# size, and the growth from the smallest size to the largest.
awk -F'\t' -v sizes="$SIZES" -v dialects="$dialects" '
  { p50[$1, $2, $3] = $4; if (!($3 in seen)) { seen[$3] = 1; order[++rows] = $3 } total[$1, $2, $3] = $6; bytes[$1, $2, $3] = $7 }
  END {
    ns = split(sizes, size, " "); nd = split(dialects, dialect, " ")
    printf "%-30s", "median ms"
    for (d = 1; d <= nd; d++) { for (s = 1; s <= ns; s++) printf " %10s", substr(dialect[d], 1, 6) " " size[s] / 1000 "k"; printf " %8s", "growth" }
    printf "\n"
    for (r = 1; r <= rows; r++) {
      printf "%-30s", order[r]
      for (d = 1; d <= nd; d++) {
        for (s = 1; s <= ns; s++) printf " %10.2f", p50[dialect[d], size[s], order[r]]
        first = p50[dialect[d], size[1], order[r]]; last = p50[dialect[d], size[ns], order[r]]
        printf " %7.1fx", (first > 0) ? last / first : 0
      }
      printf "\n"
    }
    printf "\nsizes grew %.1fx; totalResults and bytes at the largest size (%s):\n", size[ns] / size[1], dialect[1]
    for (r = 1; r <= rows; r++) printf "  %-30s totalResults %8d  %10d bytes\n", order[r], total[dialect[1], size[ns], order[r]], bytes[dialect[1], size[ns], order[r]]
  }' "$OUT"
