#!/usr/bin/env bash
# Flood test of the real scimgate binary: legitimate requests at a fixed rate
# with a few (cached) tokens, alone and then beside a flood of distinct
# made-up tokens with valid checksums (anyone can mint them: the checksum is
# public). It prints the legitimate requests' latency in both phases, and
# how many token lookups reached the database during the flood: counted by
# scimgate at the store boundary (/metrics), and on PostgreSQL also read from
# the server's own statistics (scans of the tokens table, in a schema of the
# run's own, so that nothing else counts).
#
#   proxy/loadtest/flood.sh                       # SQLite
#   DATABASE=postgres://postgres@127.0.0.1:5432/test?sslmode=disable proxy/loadtest/flood.sh
#   FLOOD_RATE=10000 LEGIT_RATE=200 DURATION=10s ROUNDS=3 TOKEN_INDEX=false CACHE_SIZE=1000 proxy/loadtest/flood.sh
#   EXTRA_AUTH='  index_sync_interval: 5ms' proxy/loadtest/flood.sh    # more auth.* options
#
# Phases alternate for ROUNDS rounds so that a noisy neighbour hits both
# alike; the p50s compared are the medians of the rounds.
#
# Needs psql on PostgreSQL. Everything runs on loopback and stops by itself.
set -euo pipefail
cd "$(dirname "$0")/../.."

FLOOD_RATE=${FLOOD_RATE:-10000}
LEGIT_RATE=${LEGIT_RATE:-200}
DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-3}
STATS_WAIT=${STATS_WAIT:-61}
# MALFORMED=true floods with tokens whose checksum is wrong: refused before
# any cache or index, they show what the requests alone cost the machine.
MALFORMED=${MALFORMED:-false}
TOKEN_INDEX=${TOKEN_INDEX:-true}
CACHE_SIZE=${CACHE_SIZE:-1000}
PORT_BASE=${PORT_BASE:-19100}
UP=127.0.0.1:$PORT_BASE GATE=127.0.0.1:$((PORT_BASE + 2)) MGMT=127.0.0.1:$((PORT_BASE + 3))

work=$(mktemp -d)
pids=()
schema=""
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -n "$schema" ] && psql "$DATABASE" -qc "DROP SCHEMA $schema CASCADE" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/scimgate" ./cmd/scimgate
go build -o "$work/loadtest" ./proxy/loadtest

if [[ "${DATABASE:-}" == postgres* ]]; then
  command -v psql >/dev/null || { echo "psql is needed on PostgreSQL (apt-get install postgresql-client)" >&2; exit 1; }
  schema=flood_$$_$RANDOM
  psql "$DATABASE" -qc "CREATE SCHEMA $schema"
  sep='?'; [[ "$DATABASE" == *\?* ]] && sep='&'
  db="$DATABASE${sep}search_path=$schema"
else
  db=$work/scimgate.db
fi
pg() { psql "$DATABASE" -Atc "SELECT pg_stat_clear_snapshot(); $1" | tail -1; }
# token_scans: scans of the tokens table, by index or not (a lookup is one;
# on a table this small the planner may read it whole rather than through
# the hash index; besides lookups only the last-used flush, every 30 s,
# scans it); log_scans: of the change log (follower and index reads). A busy backend reports its
# statistics up to a minute late, hence the wait before each reading
# (STATS_WAIT), and one reading before and one after all the rounds.
scans() { pg "SELECT coalesce(sum(seq_scan + coalesce(idx_scan, 0)), 0) FROM pg_stat_user_tables WHERE schemaname = '$schema' AND relname = '$1'"; }
token_scans() { scans tokens; }
log_scans() { scans changes; }
metric() { curl -fsS "http://$MGMT/metrics" | awk -v m="$1" '$1 == m || index($1, m "{") == 1 {s += $2} END {print s + 0}'; }

wait_port() {
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/${1%:*}/${1#*:}") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing listens on $1" >&2
  exit 1
}

gate() { "$work/scimgate" --database "$db" "$@"; }
gate migrate >/dev/null # other commands refuse a database that does not exist
gate org create --name flood >/dev/null
for i in $(seq 10); do
  gate --json service-token create --org flood --name "legit$i" | sed -n 's/.*"token": *"\([^"]*\)".*/\1/p' >>"$work/tokens"
done
[ "$(wc -l <"$work/tokens")" -eq 10 ] || { echo "could not create the legitimate tokens" >&2; exit 1; }
cat >"$work/scimgate.yaml" <<YAML
auth:
  cache_size: $CACHE_SIZE
  token_index: $TOKEN_INDEX
${EXTRA_AUTH:-}
YAML
"$work/loadtest" upstream -listen "$UP" & pids+=($!)
SCIMGATE_ACTIVITY_LOG_PATH=off "$work/scimgate" serve --config "$work/scimgate.yaml" --database "$db" \
  --upstream "http://$UP" --listen "$GATE" --management-listen "$MGMT" 2>"$work/serve.log" & pids+=($!)
wait_port "$UP"; wait_port "$GATE"; wait_port "$MGMT"
sleep 1 # the token index loads
while read -r t; do curl -fsS -o /dev/null -H "Authorization: Bearer $t" "http://$GATE/orders"; done <"$work/tokens"

echo "$(nproc) cores; $(if [ -n "$schema" ]; then echo PostgreSQL; else echo SQLite; fi); auth.token_index $TOKEN_INDEX, auth.cache_size $CACHE_SIZE; $ROUNDS rounds of $DURATION without, then with the flood"
echo "legitimate: $LEGIT_RATE requests/s over 10 cached tokens; flood: $FLOOD_RATE distinct made-up tokens/s$($MALFORMED && echo ", with a wrong checksum")"
lookups=0 refusals=0 syncs=0 negatives=0 flood_secs=0
if [ -n "$schema" ]; then
  echo "(waiting ${STATS_WAIT}s for PostgreSQL's statistics)"
  sleep "$STATS_WAIT"; h0=$(token_scans) l0=$(log_scans) run_start=$(date +%s.%N)
fi
for round in $(seq "$ROUNDS"); do
  out=$("$work/loadtest" flood -target "http://$GATE/orders" -tokens "$work/tokens" -flood-rate 0 -legit-rate "$LEGIT_RATE" -duration "$DURATION")
  echo "round $round, no flood: $out"
  sed -n 's/.* p50 \([0-9]*\)µs.*/\1/p' <<<"$out" >>"$work/base.p50"

  m0=$(metric scimgate_auth_store_lookups_total) r0=$(metric scimgate_auth_index_refusals_total)
  s0=$(metric scimgate_auth_index_syncs_total) n0=$(metric scimgate_auth_negative_cache_hits_total)
  start=$(date +%s.%N)
  out=$("$work/loadtest" flood -target "http://$GATE/orders" -tokens "$work/tokens" -flood-rate "$FLOOD_RATE" -malformed="$MALFORMED" -legit-rate "$LEGIT_RATE" -duration "$DURATION")
  secs=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN {print e - s}')
  echo "round $round, flood:    ${out//$'\n'/$'\n                  '}"
  sed -n 's/^legit: .* p50 \([0-9]*\)µs.*/\1/p' <<<"$out" >>"$work/flood.p50"
  flood_secs=$(awk -v a="$flood_secs" -v b="$secs" 'BEGIN {print a + b}')
  lookups=$((lookups + $(metric scimgate_auth_store_lookups_total) - m0))
  refusals=$((refusals + $(metric scimgate_auth_index_refusals_total) - r0))
  syncs=$((syncs + $(metric scimgate_auth_index_syncs_total) - s0))
  negatives=$((negatives + $(metric scimgate_auth_negative_cache_hits_total) - n0))
done
if [ -n "$schema" ]; then
  run_secs=$(awk -v s="$run_start" -v e="$(date +%s.%N)" 'BEGIN {print e - s}')
  echo "(waiting ${STATS_WAIT}s for PostgreSQL's statistics)"
  sleep "$STATS_WAIT"; pg_lookups=$(($(token_scans) - h0)) pg_log=$(($(log_scans) - l0))
fi

median() { sort -g "$1" | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
per_s() { awk -v n="$1" -v s="$flood_secs" 'BEGIN {printf "%d (%.1f/s)", n, n / s}'; }
base=$(median "$work/base.p50") flood=$(median "$work/flood.p50")
echo
echo "legitimate p50, median of rounds: ${base}µs without the flood, ${flood}µs with it: $(awk -v a="$flood" -v b="$base" 'BEGIN {printf "%+.1f %%", 100 * (a - b) / b}')"
echo "during the flood ($(printf %.1f "$flood_secs") s), counted by scimgate: store lookups $(per_s "$lookups"), refused by the index $(per_s "$refusals"), change-log reads for them $(per_s "$syncs"), negative-cache hits $(per_s "$negatives")"
if [ -n "$schema" ]; then
  echo "PostgreSQL's statistics over all rounds ($(printf %.1f "$run_secs") s, the flood's $(printf %.1f "$flood_secs") s among them): scans of the tokens table (lookups) $pg_lookups ($(per_s "$pg_lookups" | sed 's/.*(//; s/)//') of flood), of the change log (follower and index reads) $pg_log ($(awk -v n="$pg_log" -v s="$run_secs" 'BEGIN {printf "%.1f/s", n / s}'))"
fi
