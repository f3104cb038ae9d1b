#!/usr/bin/env bash
# Verifies the install path the Docker image uses, without Docker:
#   make install PREFIX=<scratch>  →  redis-server <scratch>/etc/auscout/redis.conf  →  auscoutclient add + lookup
# Also checks that module configs given on the command line (as `docker run IMAGE --auscout.x y` does) apply.
set -euo pipefail
root=$(mktemp -d /tmp/auscout-install.XXXXXX)
port=${PORT:-16399}
cleanup() {
    redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
    rm -rf "$root"
}
trap cleanup EXIT

make install PREFIX="$root/prefix" >/dev/null
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
echo "test-install: ok (installed module + client: add, lookup found two.flac at ${offset}s, a WebM/Opus clip found one.wav)"
