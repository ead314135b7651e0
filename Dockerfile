# Multi-stage build of the drover worker and CLI.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 GOFLAGS=-buildvcs=false go build -trimpath -o /out/drover ./cmd/drover

FROM debian:bookworm-slim
# The exec driver runs shell commands; storage drivers use tar, zstd and btrfs.
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates tar zstd btrfs-progs \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/drover /usr/local/bin/drover
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/drover"]
CMD ["worker"]
