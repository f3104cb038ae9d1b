#!/usr/bin/env bash
# Verifies the install path the Docker image uses, without Docker:
#   make install PREFIX=<scratch>  →  redis-server <scratch>/etc/auscout/redis.conf  →  auscoutclient add + lookup
# Also checks that module configs given on the command line (as `docker run IMAGE --auscout.x y` does) apply.
set -euo pipefail
root=$(mktemp -d /tmp/auscout-install.XXXXXX)
port=${PORT:-16399}
run_pid=''
cleanup() {
    redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
    [[ -n $run_pid ]] && kill -TERM "$run_pid" 2>/dev/null && wait "$run_pid" 2>/dev/null
    rm -rf "$root"
}
trap cleanup EXIT

make install PREFIX="$root/prefix" >/dev/null

# The image's runtime stage has only what its apt-get line installs: every
# shared library the installed binaries load must come from one of those
# packages or from the base image's own (libc6, libgcc-s1).
runtime_pkgs=" libc6 libgcc-s1 $(sed -n '/^FROM debian/,$p' Dockerfile \
    | grep -o 'no-install-recommends [^&\\]*' | head -1 | cut -d' ' -f2-) "
for bin in "$root/prefix/bin/auscoutclient" "$root/prefix/bin/auscout-http" "$root/prefix/lib/auscout/libauscout.so"; do
    for lib in $(ldd "$bin" | awk '/=>/ {print $3}'); do
        pkg=$(dpkg -S "$lib" 2>/dev/null || dpkg -S "$(readlink -f "$lib")" 2>/dev/null || true)
        pkg=${pkg%%:*}
        [[ -n $pkg && $runtime_pkgs == *" $pkg "* ]] || {
            echo "test-install: $(basename "$bin") loads $lib (package ${pkg:-unknown}), which the Dockerfile's runtime stage does not install"
            exit 1
        }
    done
done
mkdir -p "$root/data"
redis-server "$root/prefix/etc/auscout/redis.conf" --dir "$root/data" --port "$port" \
    --auscout.default-threshold 0.3 --daemonize yes --logfile "$root/redis.log"
for _ in $(seq 50); do redis-cli -p "$port" ping 2>/dev/null | grep -q PONG && break; sleep 0.1; done

got=$(redis-cli -p "$port" config get auscout.default-threshold | tail -1)
[[ $got == 0.3* ]] || { echo "test-install: config from the command line not applied: $got"; exit 1; }

# Two different 20 s tracks; a 5 s excerpt of the second must be found, at its offset.
ffmpeg -nostdin -v error -f lavfi -i "sine=frequency=220:duration=20,aeval=val(0)*(0.6+0.4*sin(2*PI*3*t))" \
    -f lavfi -i "anoisesrc=d=20:c=pink:a=0.2" -filter_complex amix=inputs=2 -ar 44100 "$root/one.wav"
ffmpeg -nostdin -v error -f lavfi -i "sine=frequency=330:duration=20,aeval=val(0)*(0.5+0.5*sin(2*PI*0.7*t))" \
    -f lavfi -i "anoisesrc=d=20:c=brown:a=0.3:seed=7" -filter_complex amix=inputs=2 -ar 22050 "$root/two.flac"
ffmpeg -nostdin -v error -ss 8 -t 5 -i "$root/two.flac" -c:a libmp3lame -b:a 96k "$root/clip.mp3"

client="$root/prefix/bin/auscoutclient"
"$client" add -p "$port" -k songs "$root/one.wav" "$root/two.flac" --quiet
count=$(redis-cli -p "$port" auscout.count songs)
[[ $count == 2 ]] || { echo "test-install: expected 2 tracks, got $count"; exit 1; }
out=$("$client" lookup -p "$port" -k songs --csv --quiet "$root/clip.mp3")
echo "$out"
row=$(echo "$out" | tail -1)
match=$(echo "$row" | cut -d, -f2)
offset=$(echo "$row" | cut -d, -f3)
[[ $match == two.flac ]] || { echo "test-install: wrong match: $row"; exit 1; }
python3 -c "import sys; sys.exit(0 if abs(float('$offset') - 8.0) <= 0.5 else 1)" \
    || { echo "test-install: wrong offset: $row"; exit 1; }
# Opus (the libopus decoder the installed client links): a WebM/Opus clip, as
# browsers record, of the first track.
ffmpeg -nostdin -v error -ss 3 -t 5 -i "$root/one.wav" -c:a libopus -b:a 48k "$root/clip.webm"
row=$("$client" lookup -p "$port" -k songs --csv --quiet "$root/clip.webm" | tail -1)
[[ $(echo "$row" | cut -d, -f2) == one.wav ]] || { echo "test-install: wrong match for clip.webm: $row"; exit 1; }
redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true

# The image's entrypoint: the installed auscout-run starts Redis and the HTTP
# service; the page and the API answer; SIGTERM (docker stop) stops both.
run_port=$((port + 1)) http_port=$((port + 2))
AUSCOUT_DATA="$root/run-data" AUSCOUT_REDIS_PORT=$run_port AUSCOUT_LISTEN=127.0.0.1:$http_port \
    AUSCOUT_KEY=songs "$root/prefix/bin/auscout-run" --auscout.default-threshold 0.3 > "$root/run.log" 2>&1 &
run_pid=$!
for _ in $(seq 100); do grep -q "auscout: open http://127.0.0.1:$http_port/" "$root/run.log" && break; sleep 0.1; done
grep -q "auscout: open" "$root/run.log" || { echo "test-install: auscout-run did not start:"; cat "$root/run.log"; exit 1; }
python3 - "$http_port" "$root" <<'PY'
import json, sys, urllib.request
base, root = f"http://127.0.0.1:{sys.argv[1]}", sys.argv[2]
def call(path, data=None, ctype=None, method=None):
    req = urllib.request.Request(base + path, data=data, method=method)
    if ctype:
        req.add_header("Content-Type", ctype)
    with urllib.request.urlopen(req, timeout=60) as r:
        return r.status, r.read()
status, page = call("/")
assert status == 200 and b'id="listen"' in page, "the page is not served"
status, health = call("/health")
assert status == 200 and json.loads(health)["status"] == "ok", health
for name in ("one.wav", "two.flac"):
    with open(f"{root}/{name}", "rb") as f:
        status, added = call(f"/v1/tracks?descr={name}", f.read(), "application/octet-stream")
    assert status == 201, added
with open(f"{root}/clip.webm", "rb") as f:
    status, reply = call("/v1/lookup", f.read(), "audio/webm")
best = json.loads(reply)["matches"][0]
assert best["descr"] == "one.wav" and abs(best["offset_s"] - 3.0) < 0.5, reply
print(f"test-install: auscout-run: page served, POST /v1/lookup found {best['descr']} at {best['offset_s']} s")
PY
kill -TERM "$run_pid"
wait "$run_pid" || true
run_pid=''
if redis-cli -p "$run_port" ping >/dev/null 2>&1 || (exec 3<>"/dev/tcp/127.0.0.1/$http_port") 2>/dev/null; then
    echo "test-install: auscout-run left Redis or the service running after SIGTERM"; exit 1
fi
echo "test-install: ok (installed module + client: add, lookup found two.flac at ${offset}s, a WebM/Opus clip found one.wav; auscout-run served the page and the API and stopped on SIGTERM)"
