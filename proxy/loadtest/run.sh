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
#      which parses the extra headers on the same two cores
#   4. scimgate in front of it, every request with one (cached) service token
#
# The proxies alternate for ROUNDS rounds so that a noisy neighbour hits all
# alike; the ratios printed are of median throughputs. Everything runs on
# loopback and stops by itself.
#
#   proxy/loadtest/run.sh            # DURATION=10s CONNECTIONS=64 ROUNDS=3
#   IDENTITY_HEADERS=id,permissions proxy/loadtest/run.sh   # forward fewer
#   TELEMETRY=off|metrics|trace-1|trace-100 proxy/loadtest/run.sh
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
PORT_BASE=${PORT_BASE:-19000}
UP=127.0.0.1:$PORT_BASE BARE=127.0.0.1:$((PORT_BASE + 1))
GATE=127.0.0.1:$((PORT_BASE + 2)) MGMT=127.0.0.1:$((PORT_BASE + 3))
BAREIDS=127.0.0.1:$((PORT_BASE + 4))

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
gate org create --name loadtest >/dev/null
token=$(gate --json service-token create --org loadtest --name wrk | sed -n 's/.*"token": *"\([^"]*\)".*/\1/p')
[ -n "$token" ] || { echo "could not create a service token" >&2; exit 1; }
printf 'proxy:\n  identity_headers: [%s]\n' "$IDENTITY_HEADERS" >"$work/scimgate.yaml"
case "$TELEMETRY" in
  off) printf 'telemetry:\n  metrics: {prometheus: false}\n' >>"$work/scimgate.yaml" ;;
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
      "$(awk -v p="${TELEMETRY#trace-}" 'BEGIN {print p / 100}')" >>"$work/scimgate.yaml"
    ;;
  *) echo "TELEMETRY must be off, metrics, trace-1 or trace-100" >&2; exit 2 ;;
esac
SCIMGATE_ACTIVITY_LOG_PATH="${ACTIVITY_LOG:-$work/activity.log}" \
  "$work/scimgate" serve --config "$work/scimgate.yaml" --database "$db" --upstream "http://$UP" --listen "$GATE" \
  --management-listen "$MGMT" 2>"$work/serve.log" & pids+=($!)
wait_port "$UP"; wait_port "$BARE"; wait_port "$BAREIDS"; wait_port "$GATE"

# One request each first: connections open, scimgate's cache warm.
curl -fsS -o /dev/null "http://$BARE/orders"
curl -fsS -o /dev/null "http://$BAREIDS/orders"
curl -fsS -o /dev/null -H "Authorization: Bearer $token" "http://$GATE/orders"

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

echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION, $ROUNDS rounds, $(nproc) cores; identity headers: $IDENTITY_HEADERS; telemetry: $TELEMETRY"
run upstream "http://$UP/orders"
for _ in $(seq "$ROUNDS"); do
  run bare "http://$BARE/orders"
  run bare+ids "http://$BAREIDS/orders"
  run scimgate "http://$GATE/orders" "Authorization: Bearer $token"
done

median() { sort -g "$1" | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
bare=$(median "$work/bare.rates")
ids=$(median "$work/bare+ids.rates")
scim=$(median "$work/scimgate.rates")
up=$(median "$work/upstream.rates")
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", a / b}'; }
echo
printf 'median req/s: upstream %.0f, bare %.0f, bare+ids %.0f, scimgate %.0f\n' "$up" "$bare" "$ids" "$scim"
echo "ratio scimgate / bare proxy:               $(ratio "$scim" "$bare")"
echo "ratio bare+ids / bare proxy:               $(ratio "$ids" "$bare")   (the identity headers alone)"
echo "ratio scimgate / bare proxy with the same headers: $(ratio "$scim" "$ids")   (authentication, telemetry, activity log)"
# Paired: each round's scimgate against the bare proxy measured just before
# it, then the median; steadier when the machine's speed drifts.
paste "$work/scimgate.rates" "$work/bare.rates" | awk '{print $1 / $2}' >"$work/paired.rates"
echo "median of per-round ratios scimgate / bare proxy: $(median "$work/paired.rates" | awk '{printf "%.3f", $1}')"
[ -f "$work/activity.log" ] && echo "activity log lines: $(wc -l <"$work/activity.log")"
