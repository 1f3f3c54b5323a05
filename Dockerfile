# syntax=docker/dockerfile:1
# The edgeprobe agent: one static `probe` binary on a distroless base (no
# shell, no package manager), run as the non-root user 65532.
#
#   docker build -t edgeprobe .
#   docker run --rm -p 9470:9470 \
#     -v "$PWD/edgeprobe.yml:/etc/edgeprobe/edgeprobe.yml:ro" edgeprobe
#
# docs/deploy.md has the rest (AWS credentials, ECS, Kubernetes). The
# checks that keep this file honest are in deploy/docker_test.go.

ARG GO_VERSION=1.26

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
# Modules first: this layer is reused until go.mod or go.sum change.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
# Static (CGO_ENABLED=0: Go's own resolver and TLS, no libc), no local paths
# in the binary (-trimpath), no symbol tables (-s -w). The version is the
# build info: with .git in the build context (see .dockerignore) go build
# stamps the commit, its time and whether the tree was modified, and on a
# tagged commit the tag as the module version; `probe version` and the
# edgeprobe_build_info metric report them. `go version -m` prints them here.
ARG TARGETOS
ARG TARGETARCH
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    git config --global --add safe.directory /src && \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH GOFLAGS=-buildvcs=auto \
    go build -trimpath -ldflags="-s -w" -o /out/probe ./cmd/probe && \
    go version -m /out/probe

FROM gcr.io/distroless/static-debian12:nonroot
# The CA bundle for probing HTTPS sites and calling AWS (distroless has one
# too; copying it keeps the image right if the base becomes scratch).
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/probe /probe
USER 65532:65532
# /metrics, /healthz, /ready and the status page (exporters.prometheus.listen).
EXPOSE 9470
# The agent probes itself: `probe check` of its own /healthz exits 0 when it
# answers 200, 1 when not (no curl or shell in this image). It assumes the
# default listen address without TLS or basic auth; with a web_config or
# another port, override it (docker run --health-cmd) or turn it off
# (--no-healthcheck). Orchestrators use their own probes on /healthz and
# /ready (deploy/).
HEALTHCHECK --interval=30s --timeout=10s --start-period=10s --retries=3 \
    CMD ["/probe", "check", "--count", "1", "--timeout", "5s", "--format", "jsonl", "http://127.0.0.1:9470/healthz"]
ENTRYPOINT ["/probe"]
CMD ["run", "--config", "/etc/edgeprobe/edgeprobe.yml"]
