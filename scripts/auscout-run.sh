#!/usr/bin/env bash
# auscout-run: redis-server with the auscout module and the auscout-http
# service together, in the foreground. Ctrl-C (or SIGTERM, as `docker stop`
# sends) stops both; if either exits, the other is stopped too.
#
#   auscout-run [redis-server options…]      e.g. auscout-run --auscout.default-threshold 0.3
#
# `make run` runs it from the build tree; `make install` installs it as
# PREFIX/bin/auscout-run, and the Docker image uses it as its entrypoint.
#
# Environment (defaults for an installed copy in PREFIX/bin):
#   AUSCOUT_REDIS_CONF  the redis.conf that loads the module  (PREFIX/etc/auscout/redis.conf)
#   AUSCOUT_HTTP_BIN    the auscout-http binary                (PREFIX/bin/auscout-http)
#   AUSCOUT_DATA        Redis' working directory: RDB and AOF  (the current directory)
#   AUSCOUT_REDIS_PORT  Redis' port, also what the service connects to (6379)
#   AUSCOUT_LISTEN      the service's address                  (127.0.0.1:8080)
# and every other AUSCOUT_* variable auscout-http reads (AUSCOUT_KEY, AUSCOUT_API_KEY, …).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
conf=${AUSCOUT_REDIS_CONF:-$here/../etc/auscout/redis.conf}
http_bin=${AUSCOUT_HTTP_BIN:-$here/auscout-http}
data=${AUSCOUT_DATA:-$PWD}
export AUSCOUT_REDIS_PORT=${AUSCOUT_REDIS_PORT:-6379}
export AUSCOUT_LISTEN=${AUSCOUT_LISTEN:-127.0.0.1:8080}

for f in "$conf" "$http_bin"; do
    [[ -e $f ]] || { echo "auscout-run: $f is missing (build or install auscout first)" >&2; exit 1; }
done
mkdir -p "$data"

redis_pid='' http_pid=''
stop() {
    trap - INT TERM EXIT
    # SIGTERM: the service finishes its requests; Redis saves if configured.
    local pid
    for pid in $http_pid $redis_pid; do
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    echo "auscout-run: stopped" >&2
}
trap 'stop; exit 130' INT
trap 'stop; exit 143' TERM
trap stop EXIT

# Transparent huge pages for Redis' allocator (jemalloc): a lookup's random
# reads over the index then miss the TLB far less (docs/operations.md).
# An explicit MALLOC_CONF wins.
MALLOC_CONF=${MALLOC_CONF-thp:always} redis-server "$conf" --dir "$data" --port "$AUSCOUT_REDIS_PORT" "$@" &
redis_pid=$!
# Loading a big RDB or AOF takes a while; the service would answer 503
# until then anyway, but the URL is only worth printing once Redis is up.
for _ in $(seq 600); do
    if ! kill -0 "$redis_pid" 2>/dev/null; then
        echo "auscout-run: redis-server exited during startup" >&2
        exit 1
    fi
    redis-cli -p "$AUSCOUT_REDIS_PORT" ping 2>/dev/null | grep -q PONG && break
    sleep 0.1
done

"$http_bin" &
http_pid=$!
host=${AUSCOUT_LISTEN%:*}
port=${AUSCOUT_LISTEN##*:}
[[ $host == 0.0.0.0 || $host == '[::]' ]] && host=127.0.0.1
for _ in $(seq 100); do
    kill -0 "$http_pid" 2>/dev/null || break
    (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null && break
    sleep 0.1
done
if kill -0 "$http_pid" 2>/dev/null; then
    echo "auscout: open http://$host:$port/ (Redis with the module on port $AUSCOUT_REDIS_PORT, data in $data; Ctrl-C stops both)"
fi

# Either one ending ends the pair.
wait -n "$redis_pid" "$http_pid" || true
