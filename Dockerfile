# gatehouse: a static, CGO-free binary on an empty image, run as a
# non-root user, with its embedded store on the /data volume.
#
#   docker build -t gatehouse .
#   docker run -p 8080:8080 -v gatehouse-data:/data -e GATEHOUSE_MASTER_KEY=... gatehouse
#
# deploy/compose.yaml runs two replicas on PostgreSQL behind nginx.

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /out/gatehouse ./cmd/gatehouse \
 && mkdir -p /out/data /out/tmp \
 && chmod 0700 /out/data && chmod 1777 /out/tmp

FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/gatehouse /usr/local/bin/gatehouse
COPY --from=build --chown=65532:65532 /out/data /data
COPY --from=build /out/tmp /tmp
# 65532 is "nonroot" in distroless images; no passwd file is needed.
USER 65532:65532
ENV GATEHOUSE_ADDR=0.0.0.0:8080 \
    GATEHOUSE_DATA=/data \
    HOME=/data
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["/usr/local/bin/gatehouse", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/gatehouse"]
CMD ["serve"]
