# auscout: redis-server with the auscout module loaded and the HTTP service with
# its page (auscout-run starts both; `docker stop` stops both), plus the
# auscoutclient CLI.
#
#   docker build -t auscout .
#   docker run -d -p 8080:8080 -p 6379:6379 -v auscout-data:/data auscout      # the page: http://localhost:8080/
#   docker run -d -p 8080:8080 -e AUSCOUT_API_KEY=s3cret -v auscout-data:/data auscout   # writes need the key
#   docker run -d -p 6379:6379 -v auscout-data:/data auscout --auscout.default-threshold 0.3
#   docker exec -it <container> auscoutclient lookup -k auscout /some/clip.mp3
#
# Every build step is the same `make install` that CI runs on a clean checkout
# (`make test-install`), since Docker itself cannot run on the build machines.

# ---- build stage: Rust + what `scripts/deps.sh build` checks for: libclang
# (bindgen, for the redis-module build), libopus, the ALSA headers and
# pkg-config (the client's microphone input)
FROM rust:1-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends libclang-dev clang libopus-dev libasound2-dev pkg-config \
      python3 redis-server redis-tools make \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN make install PREFIX=/opt/auscout

# ---- runtime stage: Debian's redis-server 7.0, the module, the client, the
# config, and the shared libraries they load (`make test-install` checks that
# this apt-get line provides every one of them)
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends redis-server redis-tools libopus0 libasound2 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system auscout && useradd --system --gid auscout --home-dir /data auscout \
 && mkdir -p /data && chown auscout:auscout /data
COPY --from=build /opt/auscout /opt/auscout
RUN ln -s /opt/auscout/bin/auscoutclient /usr/local/bin/auscoutclient \
 && ln -s /opt/auscout/bin/auscout-http /usr/local/bin/auscout-http
VOLUME /data
EXPOSE 6379 8080
# auscout-run's settings (every AUSCOUT_* variable of auscout-http works too):
# the page and the API on every interface, the index key the page uses.
ENV AUSCOUT_DATA=/data AUSCOUT_LISTEN=0.0.0.0:8080 AUSCOUT_KEY=auscout
USER auscout
WORKDIR /data
# Inside a container Redis listens on every interface; protect it with
# `--requirepass` (or an ACL file) when the port is reachable by others, and
# the service's writes with AUSCOUT_API_KEY.
ENTRYPOINT ["/opt/auscout/bin/auscout-run", "--bind", "0.0.0.0", "--protected-mode", "no"]
# Extra arguments to `docker run` go to redis-server: e.g. `--auscout.max-toggle-bits 6`.
CMD []
