#!/usr/bin/env bash
# Builds a small OpenTelemetry Collector (an OTLP receiver and the debug
# exporter) with the collector's own builder, once, and caches it outside the
# repository. scimgate's telemetry end-to-end test sends spans to it: a real
# OTLP receiver that nobody here wrote. Prints the binary's path.
#
# Only the v0.140.0 collector release is served by the module proxy here, and
# the checksum database misses some of its modules (hence GOSUMDB=off). The
# contrib file exporter needs a module the proxy does not serve: the core
# debug exporter, at detailed verbosity, writes every span to the log instead.
set -euo pipefail
version=0.140.0
providers=1.46.0
cache=${SCIMGATE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/scimgate}
bin=$cache/otelcol-$version/otelcol-scimgate
if [ -x "$bin" ]; then
  echo "$bin"
  exit 0
fi
mkdir -p "$cache"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export PATH="/usr/local/go/bin:$PATH" GOSUMDB=off GOFLAGS=-mod=mod
GOBIN="$work/bin" go install "go.opentelemetry.io/collector/cmd/builder@v$version" >&2
cat >"$work/builder.yaml" <<YAML
dist:
  name: otelcol-scimgate
  description: OTLP receiver and debug exporter for scimgate's tests
  output_path: $cache/otelcol-$version
receivers:
  - gomod: go.opentelemetry.io/collector/receiver/otlpreceiver v$version
exporters:
  - gomod: go.opentelemetry.io/collector/exporter/debugexporter v$version
providers:
  - gomod: go.opentelemetry.io/collector/confmap/provider/fileprovider v$providers
  - gomod: go.opentelemetry.io/collector/confmap/provider/envprovider v$providers
YAML
"$work/bin/builder" --config "$work/builder.yaml" >&2
echo "$bin"
