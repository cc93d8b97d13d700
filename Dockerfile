# syntax=docker/dockerfile:1
#
# fitgate's image: a static binary on distroless, running as the nonroot
# user. Build it with `docker build -t fitgate .` from the repository root.
# test/chart/dockerfile_test.go checks that the build line below matches
# `make build` and that the binary it makes is static and reproducible.

FROM golang:1.26 AS build
WORKDIR /src
# Dependencies first, so that a source change does not download them again.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o /fitgate ./cmd/fitgate

# static: no libc (the binary needs none), CA certificates and tzdata only.
# :nonroot runs as uid/gid 65532 with no shell.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /fitgate /fitgate
# Numeric, so that the kubelet can verify runAsNonRoot.
USER 65532:65532
ENTRYPOINT ["/fitgate"]
CMD ["serve"]
