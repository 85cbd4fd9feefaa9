#!/usr/bin/env bash
# Cache-miss latency of the real scimgate binary with 1k and with 1M tokens
# in the database, side by side: every request is a miss (auth.cache_ttl is
# 1ns, so each one asks the database, through the token index), with a
# sample of real tokens from cmd/scimgate-fill, at a fixed rate. The two
# servers alternate for ROUNDS rounds; the p50s compared are the medians.
#
#   proxy/loadtest/miss.sh                        # SQLite
#   DATABASE=postgres://postgres@127.0.0.1:5432/test?sslmode=disable proxy/loadtest/miss.sh
#   SIZES="1000 1000000" RATE=300 DURATION=10s ROUNDS=3 proxy/loadtest/miss.sh
#
# Filling a million tokens takes a minute or two. Needs psql on PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/../.."

SIZES=${SIZES:-1000 1000000}
RATE=${RATE:-300}
DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-3}
PORT_BASE=${PORT_BASE:-19200}
UP=127.0.0.1:$PORT_BASE

work=$(mktemp -d)
pids=()
schemas=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for s in "${schemas[@]}"; do psql "$DATABASE" -qc "DROP SCHEMA $s CASCADE" >/dev/null 2>&1 || true; done
  rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/scimgate" ./cmd/scimgate
go build -o "$work/scimgate-fill" ./cmd/scimgate-fill
go build -o "$work/loadtest" ./proxy/loadtest

wait_port() {
  for _ in $(seq 300); do
    (exec 3<>"/dev/tcp/${1%:*}/${1#*:}") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing listens on $1" >&2
  exit 1
}

"$work/loadtest" upstream -listen "$UP" & pids+=($!)
printf 'auth:\n  cache_ttl: 1ns\nactivity_log:\n  path: "off"\n' >"$work/scimgate.yaml"
port=$((PORT_BASE + 1))
for n in $SIZES; do
  if [[ "${DATABASE:-}" == postgres* ]]; then
    s=miss_$$_${RANDOM}_$n
    psql "$DATABASE" -qc "CREATE SCHEMA $s"
    schemas+=("$s")
    sep='?'; [[ "$DATABASE" == *\?* ]] && sep='&'
    db="$DATABASE${sep}search_path=$s"
  else
    db=$work/db-$n
  fi
  users=$((n / 10 > 0 ? n / 10 : 1))
  "$work/scimgate-fill" --database "$db" --users "$users" --tokens "$n" --groups 20 \
    --sample "$((n < 2000 ? n : 2000))" --sample-file "$work/sample-$n" | tail -1
  # What autovacuum does soon after a bulk load anyway: without it every
  # first read of a row sets its hint bits and dirties its page.
  [[ "${DATABASE:-}" == postgres* ]] && psql "$DATABASE" -q -c "SET search_path = $s" -c "VACUUM"
  "$work/scimgate" serve --config "$work/scimgate.yaml" --database "$db" --upstream "http://$UP" \
    --listen "127.0.0.1:$port" --management-listen "127.0.0.1:$((port + 1))" 2>"$work/serve-$n.log" & pids+=($!)
  wait_port "127.0.0.1:$port"
  echo "$port" >"$work/port-$n"
  port=$((port + 2))
done
sleep 2 # the token indexes load

echo "$(nproc) cores; $(if [ ${#schemas[@]} -gt 0 ]; then echo PostgreSQL; else echo SQLite; fi); every request a cache miss, $RATE/s over $DURATION, $ROUNDS rounds"
reversed=$(tr ' ' '\n' <<<"$SIZES" | tac | tr '\n' ' ')
for round in $(seq "$ROUNDS"); do
  order=$SIZES
  [ $((round % 2)) -eq 0 ] && order=$reversed # neither size always goes first
  for n in $order; do
    out=$("$work/loadtest" flood -target "http://127.0.0.1:$(cat "$work/port-$n")/orders" -tokens "$work/sample-$n" \
      -flood-rate 0 -legit-rate "$RATE" -legit-conns 64 -duration "$DURATION")
    printf 'round %d, %8d tokens: %s\n' "$round" "$n" "$out"
    sed -n 's/.* p50 \([0-9]*\)µs.*/\1/p' <<<"$out" >>"$work/p50-$n"
  done
done

median() { sort -g "$1" | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
echo
first=""
for n in $SIZES; do
  m=$(median "$work/p50-$n")
  if [ -z "$first" ]; then
    first=$m
    echo "miss p50, median of rounds, $n tokens: ${m}µs"
  else
    echo "miss p50, median of rounds, $n tokens: ${m}µs ($(awk -v a="$m" -v b="$first" 'BEGIN {printf "%+.1f %%", 100 * (a - b) / b}') against the first)"
  fi
done
