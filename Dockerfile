# carepipe container image.
#
#   docker build -t carepipe \
#     --build-arg VERSION="$(git describe --tags --always --dirty)" \
#     --build-arg REVISION="$(git rev-parse HEAD)" .
#   docker run --rm -p 8080:8080 -e KAFKA_BROKERS=broker:9092 -e CAREPIPE_API_TOKEN=... \
#     carepipe run --http 0.0.0.0:8080 --instance-id carepipe-0
#   docker run --rm -p 8080:8080 -e CAREPIPE_API_TOKEN=dev \
#     carepipe run --demo --http 0.0.0.0:8080                         # embedded demo
#
# The image sets CAREPIPE_DEMO=off: without brokers it does not start the
# simulated demo (which would look healthy while processing nothing real)
# but exits non-zero, saying how to give brokers or run the demo; --demo
# turns it on.
# The query API (priorauth, datasync) on a non-loopback address needs
# CAREPIPE_API_TOKEN; carepipe refuses to start without it.
# See deploy/README.md for running it against a cluster and on Kubernetes.

# --- build -------------------------------------------------------------------
FROM golang:1.26-bookworm AS build
WORKDIR /src

# Dependencies first, so that a source change does not download them again.
COPY go.mod go.sum ./
RUN go mod download

COPY . .
# The build context has no .git (.dockerignore), so Go cannot stamp the
# revision itself: the build args carry it, and `carepipe version` and the
# start-up log say them. Without them the image says "(devel)" and
# "unknown", which is honest.
ARG VERSION=""
ARG REVISION=""
# A static binary: no cgo (sonic's JIT does not need it), no paths of this
# machine in the binary, no symbol tables.
RUN CGO_ENABLED=0 go build -trimpath -buildvcs=false \
    -ldflags="-s -w -X github.com/carepipe/carepipe/version.version=${VERSION} -X github.com/carepipe/carepipe/version.revision=${REVISION}" \
    -o /out/carepipe .

# --- run ---------------------------------------------------------------------
FROM scratch

# CA certificates for TLS to Kafka and the schema registry (KAFKA_TLS=true).
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/carepipe /carepipe

# Non-root (the distroless "nonroot" ids); the binary writes nothing to disk.
USER 65532:65532

# No simulated demo unless asked (--demo): a deployment without brokers stops.
ENV CAREPIPE_DEMO=off

# /metrics, /healthz, /readyz and the query API.
EXPOSE 8080

ENTRYPOINT ["/carepipe"]
CMD ["run", "--http", "0.0.0.0:8080"]
