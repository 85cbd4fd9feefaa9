# scimgate as a container image: a static binary on distroless, run as a
# non-root user, with no shell or package manager in the image.
#
#   docker build -t scimgate .
#   docker run --rm -p 8080:8080 -p 8081:8081 -v scimgate-data:/data \
#     -e SCIMGATE_UPSTREAM=http://api.internal:9000 scimgate
#
# Readiness and liveness are HTTP endpoints on the management listener
# (GET /readyz, GET /healthz on :8081): probe them from the orchestrator
# (Kubernetes httpGet, a load balancer's health check). The image has no
# shell and no HTTP client, so it declares no HEALTHCHECK.

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# modernc.org/sqlite is pure Go, so CGO is off and the binary is static.
# Built from a git checkout, the binary carries its revision ("scimgate
# version"); the safe.directory setting lets git read a checkout owned by
# another user than the build's.
RUN git config --global --add safe.directory /src \
 && CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/scimgate ./cmd/scimgate \
 && /out/scimgate version \
 && mkdir -p /out/data

# distroless/static: CA certificates (ACME, TLS to PostgreSQL), time zone
# data and a nonroot user (65532), nothing else.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/scimgate /usr/local/bin/scimgate
# The SQLite database and ACME certificates live here: mount a volume.
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
# Listen on every interface inside the container (the defaults are
# 127.0.0.1); data_dir is the volume.
ENV SCIMGATE_DATA_DIR=/data \
    SCIMGATE_LISTEN=0.0.0.0:8080 \
    SCIMGATE_MANAGEMENT_LISTEN=0.0.0.0:8081
EXPOSE 8080 8081
VOLUME ["/data"]
ENTRYPOINT ["/usr/local/bin/scimgate"]
CMD ["serve"]
