# syntax=docker/dockerfile:1
# llmprobe image: a static binary on distroless, running as nobody.
#   docker build -t llmprobe \
#     --build-arg VERSION=$(git describe --tags --always) \
#     --build-arg REVISION=$(git rev-parse HEAD) \
#     --build-arg BRANCH=$(git rev-parse --abbrev-ref HEAD) \
#     --build-arg BUILD_DATE=$(date -u +%Y%m%d-%H:%M:%S) .
# Without arguments the container probes its built-in reference endpoint
# (a demo that exports every metric); pass --config.file=... for real targets.

FROM --platform=$BUILDPLATFORM golang:1.26 AS build
ARG TARGETOS
ARG TARGETARCH
ARG VERSION=dev
ARG REVISION=unknown
ARG BRANCH=unknown
ARG BUILD_USER=docker
ARG BUILD_DATE=unknown
WORKDIR /src
# Modules first: a source change does not refetch them.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
# CGO off: a static binary for a libc-less image. -trimpath: no build paths
# in the binary. The version fields feed --version, the landing page and
# llmprobe_build_info.
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH go build -trimpath \
      -ldflags "-s -w \
        -X github.com/prometheus/common/version.Version=${VERSION} \
        -X github.com/prometheus/common/version.Revision=${REVISION} \
        -X github.com/prometheus/common/version.Branch=${BRANCH} \
        -X github.com/prometheus/common/version.BuildUser=${BUILD_USER} \
        -X github.com/prometheus/common/version.BuildDate=${BUILD_DATE}" \
      -o /out/llmprobe ./cmd/llmprobe

FROM gcr.io/distroless/static-debian12:nonroot
# The daemon starts its workers by re-executing this same binary.
COPY --from=build /out/llmprobe /bin/llmprobe
USER 65534:65534
EXPOSE 10212
ENTRYPOINT ["/bin/llmprobe"]
