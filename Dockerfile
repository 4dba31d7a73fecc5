# The idlerace image, for running a matrix's shards on Kubernetes (idlerace k8s): Debian 12
# like the machines idlerace is built on, with the Debian packages of the real upstreams,
# the latency path, the wire view and every client kind. Not built in CI; build it with
#
#   docker build --build-arg VERSION=$(git describe --tags --always) \
#     --build-arg COMMIT=$(git rev-parse --short HEAD) -t IMAGE .
#
# The version and commit matter: idlerace merge joins only shards of one build.
FROM golang:1.26-bookworm AS build
ARG VERSION=dev
ARG COMMIT=
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# cgo: the wire view's packet capture (gopacket's afpacket).
RUN CGO_ENABLED=1 go build -trimpath -ldflags "-X main.Version=${VERSION} -X main.Commit=${COMMIT}" \
      -o /out/idlerace ./cmd/idlerace

FROM debian:bookworm-slim
# Debian's nodejs is Node 18 (undici 5); the development machines run Node 20 (undici 6,
# whose keep-alive threshold the undici kind's model takes): the undici kind's model
# is for the latter, so compare its rows across the two with care.
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      nginx python3-uvicorn nodejs iproute2 haproxy caddy apache2 \
      python3-requests python3-aiohttp python3-httpx python3-pycurl \
      openjdk-17-jdk-headless libjackson2-databind-java \
      cargo rustc gcc libc6-dev librust-hyper-dev librust-tokio-dev librust-serde-json-dev librust-libc-dev \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/idlerace /usr/local/bin/idlerace
# Builds the hyper agent into the image once (~40 s) and fails the build if any client
# kind does not start.
RUN idlerace strategies --check
ENTRYPOINT ["idlerace"]
