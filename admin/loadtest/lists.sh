#!/usr/bin/env bash
# Token listings at scale (issue 14's measurement (d)): time and peak memory
# of the command line listing every user token of an org of TOKENS tokens
# (ten per person), on the database and through the admin API of a real
# "scimgate serve", and the latency of one API page of 1,000 tokens.
#
#   admin/loadtest/lists.sh                       # TOKENS=100000, SQLite
#   POSTGRES=1 admin/loadtest/lists.sh            # also on a fresh PostgreSQL database
#   TOKENS=1000000 admin/loadtest/lists.sh
#   BASELINE=/path/to/an/older/scimgate admin/loadtest/lists.sh   # also time it
#
# With BASELINE, the local listings are also run with that binary, on the
# same database, for a before/after comparison (git archive an older commit
# and go build it).
#
# The database is filled by cmd/scimgate-fill (bulk inserts through the
# store). Times are wall-clock seconds, memory the peak resident set
# (GNU time's %M); the server's peak is read from /proc before and after.
# PostgreSQL is reached as user postgres on 127.0.0.1:5432 (trust), as the
# tests do; the database is created and dropped here.
set -euo pipefail
cd "$(dirname "$0")/../.."

TOKENS=${TOKENS:-100000}
PAGES=${PAGES:-20}
PORT_BASE=${PORT_BASE:-19100}
PROXY=127.0.0.1:$PORT_BASE MGMT=127.0.0.1:$((PORT_BASE + 1))
[[ -x /usr/bin/time ]] || { echo "GNU time is not installed: apt-get install time" >&2; exit 1; }
command -v jq >/dev/null || { echo "jq is not installed: apt-get install jq" >&2; exit 1; }

work=$(mktemp -d)
pids=()
pgdb=""
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [[ -n "$pgdb" ]] && psql -h 127.0.0.1 -U postgres -d postgres -qAt -c "DROP DATABASE IF EXISTS $pgdb WITH (FORCE)" >/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/scimgate" ./cmd/scimgate
go build -o "$work/scimgate-fill" ./cmd/scimgate-fill
sg="$work/scimgate"

# measure LABEL COMMAND...: runs the command, its stdout to a file, and
# prints its time, peak memory and output size.
measure() {
  local label=$1
  shift
  /usr/bin/time -f "%e %M" -o "$work/time" "$@" >"$work/out" 2>"$work/err" || { cat "$work/err" >&2; return 1; }
  read -r secs kb <"$work/time"
  printf "  %-58s %7.2f s %8.1f MB  %6d lines\n" "$label" "$secs" "$(echo "$kb / 1024" | bc -l)" "$(wc -l <"$work/out")"
}

wait_port() {
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/${1%:*}/${1#*:}") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing listens on $1" >&2
  exit 1
}

peak_kb() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }

run_lists() {
  local db=$1 name=$2
  echo "== $name: $TOKENS user tokens, $((TOKENS / 10)) people"
  "$work/scimgate-fill" --database "$db" --org acme --users $((TOKENS / 10)) --tokens "$TOKENS" >"$work/fill" 2>&1 ||
    { cat "$work/fill" >&2; exit 1; }
  tail -2 "$work/fill" | head -1 | sed 's/^/  fill: /'
  local owner
  owner=$("$sg" --database "$db" user-token list --org acme --json | jq -r 'first(.[] | .user)')

  measure "local  user-token list --json" "$sg" --database "$db" user-token list --org acme --json
  measure "local  user-token list (table)" "$sg" --database "$db" user-token list --org acme
  measure "local  user-token list --user ONE --json" "$sg" --database "$db" user-token list --org acme --user "$owner" --json
  if [[ -n "${BASELINE:-}" ]]; then
    measure "BASELINE local user-token list --json" "$BASELINE" --database "$db" user-token list --org acme --json
    measure "BASELINE local user-token list (table)" "$BASELINE" --database "$db" user-token list --org acme
    measure "BASELINE local user-token list --user ONE --json" "$BASELINE" --database "$db" user-token list --org acme --user "$owner" --json
  fi

  local admin
  admin=$("$sg" --database "$db" service-token create --org acme --name lists-admin --permissions platform.tokens --json | jq -r .token)
  printf '%s\n' "$admin" >"$work/token"
  chmod 600 "$work/token"
  "$sg" serve --database "$db" --upstream http://127.0.0.1:9 --listen "$PROXY" --management-listen "$MGMT" \
    >/dev/null 2>"$work/serve.log" &
  local serve=$!
  pids+=("$serve")
  wait_port "$MGMT"
  local before
  before=$(peak_kb "$serve")
  measure "remote user-token list --json (client)" "$sg" --server "http://$MGMT" --token-file "$work/token" user-token list --json
  measure "remote user-token list (table, client)" "$sg" --server "http://$MGMT" --token-file "$work/token" user-token list
  measure "remote user-token list --user ONE --json" "$sg" --server "http://$MGMT" --token-file "$work/token" user-token list --user "$owner" --json
  printf "  %-58s %8.1f MB (%.1f MB before the listings)\n" "server peak while serving them" \
    "$(echo "$(peak_kb "$serve") / 1024" | bc -l)" "$(echo "$before / 1024" | bc -l)"

  # One page of 1,000 tokens: the first, and the last (its cursor found by
  # paging through once).
  local url="http://$MGMT/api/v1/user-tokens?limit=1000" cursor="" last=""
  while :; do
    cursor=$(curl -sf -H "Authorization: Bearer $admin" "$url${cursor:+&cursor=$cursor}" | jq -r '.next_cursor // empty')
    [[ -z "$cursor" ]] && break
    last=$cursor
  done
  for page in first last; do
    local q=""
    [[ $page == last ]] && q="&cursor=$last"
    for _ in $(seq "$PAGES"); do
      curl -sf -o /dev/null -w '%{time_total}\n' -H "Authorization: Bearer $admin" "$url$q"
    done | sort -n | awk -v label="API GET /user-tokens?limit=1000, $page page ($PAGES runs)" \
      '{a[NR]=$1} END {printf "  %-58s median %5.1f ms, max %5.1f ms\n", label, a[int((NR+1)/2)]*1000, a[NR]*1000}'
  done
  kill "$serve"
  wait "$serve" 2>/dev/null || true
}

run_lists "$work/scimgate.db" sqlite
if [[ "${POSTGRES:-0}" == 1 ]]; then
  pgdb="scimgate_lists_$$"
  psql -h 127.0.0.1 -U postgres -d postgres -qAt -c "CREATE DATABASE $pgdb" >/dev/null
  run_lists "postgres://postgres@127.0.0.1:5432/$pgdb?sslmode=disable" postgres
fi
