# auscout: redis-server with the auscout module loaded, plus the auscoutclient CLI.
#
#   docker build -t auscout .
#   docker run -d -p 6379:6379 -v auscout-data:/data auscout
#   docker run -d -p 6379:6379 -v auscout-data:/data auscout --auscout.default-threshold 0.3
#   docker exec -it <container> auscoutclient lookup -k songs /some/clip.mp3
#
# Every build step is the same `make install` that CI runs on a clean checkout
# (`make test-install`), since Docker itself cannot run on the build machines.

# ---- build stage: Rust + what the redis-module build needs (bindgen → libclang)
FROM rust:1-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends libclang-dev clang libopus-dev redis-server redis-tools make \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN make install PREFIX=/opt/auscout

# ---- runtime stage: Debian's redis-server 7.0, the module, the client, the config
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends redis-server redis-tools libopus0 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system auscout && useradd --system --gid auscout --home-dir /data auscout \
 && mkdir -p /data && chown auscout:auscout /data
COPY --from=build /opt/auscout /opt/auscout
RUN ln -s /opt/auscout/bin/auscoutclient /usr/local/bin/auscoutclient
VOLUME /data
EXPOSE 6379
USER auscout
WORKDIR /data
# Inside a container Redis listens on every interface; protect it with
# `--requirepass` (or an ACL file) when the port is reachable by others.
ENTRYPOINT ["redis-server", "/opt/auscout/etc/auscout/redis.conf", "--dir", "/data", "--bind", "0.0.0.0", "--protected-mode", "no"]
# Extra arguments to `docker run` are appended: e.g. `--auscout.max-toggle-bits 6`.
CMD []
