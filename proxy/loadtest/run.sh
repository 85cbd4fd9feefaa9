#!/usr/bin/env bash
# Load test of the real scimgate binary against a bare httputil.ReverseProxy,
# measured side by side in one run with wrk (Debian package "wrk"):
#
#   1. the upstream, directly
#   2. "bare": a bare ReverseProxy in front of it (pooled buffers and
#      connections), the baseline
#   3. "bare+ids": the same, also forwarding the identity headers scimgate
#      sends for a service token (fixed values, no authentication): what
#      passing an identity upstream costs by itself, mostly in the upstream,
#      which parses the extra headers on the same two cores; and, when an
#      assertion mode is measured, "bare+ids+jwt", with a fixed header as
#      long as the assertion too
#   4. scimgate in front of it, every request with one (cached) service
#      token: one scimgate per ASSERTION mode, all on the same database
#
# ASSERTION lists the modes of the signed identity assertion to measure,
# comma-separated: "off" (none), "on" (signed once per identity and cached,
# the default configuration) and "bound" (bind_request: a signature per
# request). Default: off,on.
#
# The proxies alternate for ROUNDS rounds so that a noisy neighbour hits all
# alike; the ratios printed are of median throughputs. Everything runs on
# loopback and stops by itself.
#
#   proxy/loadtest/run.sh            # DURATION=10s CONNECTIONS=64 ROUNDS=3
#   IDENTITY_HEADERS=id,permissions proxy/loadtest/run.sh   # forward fewer
#   TELEMETRY=off|metrics|trace-1|trace-100 proxy/loadtest/run.sh
#   ASSERTION=off,on,bound proxy/loadtest/run.sh
#
# TELEMETRY: "metrics" (the default configuration: Prometheus metrics, no
# tracing), "off" (no metrics either), or "trace-1"/"trace-100": metrics
# and traces sampled at 1 % or 100 %, exported over OTLP to a real
# OpenTelemetry Collector (built by .ci/otelcol.sh) that runs on the same
# cores, as a sidecar collector would.
set -euo pipefail
cd "$(dirname "$0")/../.."

DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-3}
IDENTITY_HEADERS=${IDENTITY_HEADERS:-kind,id,name,org,token_id,permissions,groups}
TELEMETRY=${TELEMETRY:-metrics}
ASSERTION=${ASSERTION:-off,on}
PORT_BASE=${PORT_BASE:-19000}
UP=127.0.0.1:$PORT_BASE BARE=127.0.0.1:$((PORT_BASE + 1))
BAREIDS=127.0.0.1:$((PORT_BASE + 4)) BAREJWT=127.0.0.1:$((PORT_BASE + 6))

command -v wrk >/dev/null || { echo "wrk is not installed: apt-get install wrk" >&2; exit 1; }
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/scimgate" ./cmd/scimgate
go build -o "$work/loadtest" ./proxy/loadtest

wait_port() {
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/${1%:*}/${1#*:}") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing listens on $1" >&2
  exit 1
}

"$work/loadtest" upstream -listen "$UP" & pids+=($!)
"$work/loadtest" bare -listen "$BARE" -upstream "http://$UP" 2>"$work/bare.log" & pids+=($!)
"$work/loadtest" bare -identity-headers "${IDENTITY_HEADERS/,groups/}" -listen "$BAREIDS" -upstream "http://$UP" 2>>"$work/bare.log" & pids+=($!)

db=$work/scimgate.db
gate() { "$work/scimgate" --database "$db" "$@"; }
gate migrate >/dev/null # other commands refuse a database that does not exist
gate org create --name loadtest >/dev/null
token=$(gate --json service-token create --org loadtest --name wrk | sed -n 's/.*"token": *"\([^"]*\)".*/\1/p')
[ -n "$token" ] || { echo "could not create a service token" >&2; exit 1; }
: >"$work/telemetry.yaml"
IFS=, read -ra modes <<<"$ASSERTION"
jwt=false
for mode in "${modes[@]}"; do
  case "$mode" in off) ;; on|bound) jwt=true ;; *) echo "ASSERTION must list off, on or bound" >&2; exit 2 ;; esac
done
if $jwt; then
  "$work/loadtest" bare -identity-headers "${IDENTITY_HEADERS/,groups/},assertion" -listen "$BAREJWT" -upstream "http://$UP" 2>>"$work/bare.log" & pids+=($!)
fi
case "$TELEMETRY" in
  off) printf 'telemetry:\n  metrics: {prometheus: false}\n' >>"$work/telemetry.yaml" ;;
  metrics) ;;
  trace-1|trace-100)
    otelcol=$(bash .ci/otelcol.sh)
    cat >"$work/otelcol.yaml" <<YAML
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:$((PORT_BASE + 5))
exporters:
  debug:
    verbosity: basic
service:
  telemetry:
    metrics:
      level: none
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [debug]
YAML
    "$otelcol" --config "$work/otelcol.yaml" >"$work/otelcol.log" 2>&1 & pids+=($!)
    export OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:$((PORT_BASE + 5))
    printf 'telemetry:\n  traces: {exporter: otlp-grpc, sample_ratio: %s}\n' \
      "$(awk -v p="${TELEMETRY#trace-}" 'BEGIN {print p / 100}')" >>"$work/telemetry.yaml"
    ;;
  *) echo "TELEMETRY must be off, metrics, trace-1 or trace-100" >&2; exit 2 ;;
esac
# One scimgate per assertion mode, each with its own ports and config.
gates=()
for i in "${!modes[@]}"; do
  mode=${modes[$i]}
  case "$mode" in
    off) assertion="{enabled: false}" ;;
    on) assertion="{enabled: true}" ;;
    bound) assertion="{enabled: true, bind_request: true}" ;;
  esac
  printf 'proxy:\n  identity_headers: [%s]\n  assertion: %s\n' "$IDENTITY_HEADERS" "$assertion" >"$work/scimgate-$mode.yaml"
  cat "$work/telemetry.yaml" >>"$work/scimgate-$mode.yaml"
  gate=127.0.0.1:$((PORT_BASE + 10 + 2 * i))
  SCIMGATE_ACTIVITY_LOG_PATH="${ACTIVITY_LOG:-$work/activity-$mode.log}" \
    "$work/scimgate" serve --config "$work/scimgate-$mode.yaml" --database "$db" --upstream "http://$UP" --listen "$gate" \
    --management-listen "127.0.0.1:$((PORT_BASE + 11 + 2 * i))" 2>"$work/serve-$mode.log" & pids+=($!)
  gates+=("$gate")
done
wait_port "$UP"; wait_port "$BARE"; wait_port "$BAREIDS"
for gate in "${gates[@]}"; do wait_port "$gate"; done
$jwt && wait_port "$BAREJWT"

# One request each first: connections open, scimgate's cache warm.
curl -fsS -o /dev/null "http://$BARE/orders"
curl -fsS -o /dev/null "http://$BAREIDS/orders"
$jwt && curl -fsS -o /dev/null "http://$BAREJWT/orders"
for gate in "${gates[@]}"; do curl -fsS -o /dev/null -H "Authorization: Bearer $token" "http://$gate/orders"; done

# run NAME URL [HEADER]: prints "NAME requests/s p50 p99" and appends the rate.
run() {
  local name=$1 url=$2 out
  if [ $# -gt 2 ]; then
    out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -H "$3" "$url")
  else
    out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$url")
  fi
  if grep -q "Non-2xx" <<<"$out"; then
    echo "$name: some responses were not 2xx:" >&2
    echo "$out" >&2
    exit 1
  fi
  local rps p50 p99
  rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  printf '%-10s %12s req/s   p50 %8s   p99 %8s\n' "$name" "$rps" "$p50" "$p99"
  echo "$rps" >>"$work/$name.rates"
}

echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION, $ROUNDS rounds, $(nproc) cores; identity headers: $IDENTITY_HEADERS; telemetry: $TELEMETRY; assertion: $ASSERTION"
run upstream "http://$UP/orders"
for _ in $(seq "$ROUNDS"); do
  run bare "http://$BARE/orders"
  run bare+ids "http://$BAREIDS/orders"
  if $jwt; then run bare+ids+jwt "http://$BAREJWT/orders"; fi
  for i in "${!modes[@]}"; do
    run "assert=${modes[$i]}" "http://${gates[$i]}/orders" "Authorization: Bearer $token"
  done
done

median() { sort -g "$1" | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
bare=$(median "$work/bare.rates")
ids=$(median "$work/bare+ids.rates")
up=$(median "$work/upstream.rates")
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", a / b}'; }
echo
printf 'median req/s: upstream %.0f, bare %.0f, bare+ids %.0f\n' "$up" "$bare" "$ids"
echo "ratio bare+ids / bare proxy: $(ratio "$ids" "$bare")   (the identity headers alone)"
if $jwt; then
  idsjwt=$(median "$work/bare+ids+jwt.rates")
  echo "ratio bare+ids+jwt / bare proxy: $(ratio "$idsjwt" "$bare")   (the identity headers and an assertion-sized header alone, $(printf %.0f "$idsjwt") req/s)"
fi
for mode in "${modes[@]}"; do
  scim=$(median "$work/assert=$mode.rates")
  # Paired: each round's scimgate against the bare proxy measured just
  # before it, then the median; steadier when the machine's speed drifts.
  paste "$work/assert=$mode.rates" "$work/bare.rates" | awk '{print $1 / $2}' >"$work/paired-$mode.rates"
  same=$ids
  [ "$mode" != off ] && same=$idsjwt
  printf 'scimgate, assertion %-6s median %.0f req/s; ratio to bare proxy %s, to bare with the same headers %s, median of per-round ratios to bare %s\n' \
    "$mode:" "$scim" "$(ratio "$scim" "$bare")" "$(ratio "$scim" "$same")" "$(median "$work/paired-$mode.rates" | awk '{printf "%.3f", $1}')"
done
if [ -f "$work/assert=off.rates" ]; then
  off=$(median "$work/assert=off.rates")
  for mode in on bound; do
    [ -f "$work/assert=$mode.rates" ] && echo "ratio assertion $mode / assertion off: $(ratio "$(median "$work/assert=$mode.rates")" "$off")"
  done
fi
for mode in "${modes[@]}"; do
  [ -f "$work/activity-$mode.log" ] && echo "activity log lines ($mode): $(wc -l <"$work/activity-$mode.log")"
done
true
