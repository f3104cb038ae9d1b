#!/usr/bin/env bash
# Checks (and, as root with apt-get, installs) what building and testing auscout needs.
#   scripts/deps.sh build   cargo, a C compiler, libclang (bindgen in the redis-module build), redis-server,
#                           libopus (the Opus decoder the fingerprint library registers with symphonia),
#                           the ALSA headers and pkg-config (`monitor --mic` through cpal; a build without
#                           them: cargo build --release --workspace --no-default-features -p auscout-cli …)
#   scripts/deps.sh test    the above + ffmpeg, sox and lame (the tests encode real audio files),
#                           chromium and chromedriver (the HTTP service's page is tested in a headless browser)
set -euo pipefail
want=${1:-build}

missing_pkgs=()
need() { # need <command-or-file> <debian package>
    if [[ $1 == /* ]]; then compgen -G "$1" >/dev/null || missing_pkgs+=("$2")
    else command -v "$1" >/dev/null || missing_pkgs+=("$2"); fi
}
need redis-server redis-server
need redis-cli redis-tools
need cc gcc
need '/usr/lib/llvm-*/lib/libclang*.so*' libclang-dev
need make make
need python3 python3
need '/usr/include/opus/opus.h' libopus-dev
need '/usr/include/alsa/asoundlib.h' libasound2-dev
need pkg-config pkg-config
if [[ $want == test ]]; then
    need ffmpeg ffmpeg
    need sox sox
    need lame lame
    need chromium chromium
    need chromedriver chromium-driver
fi

if ((${#missing_pkgs[@]})); then
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
        echo "deps: installing ${missing_pkgs[*]}" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq "${missing_pkgs[@]}" libsox-fmt-all clang >/dev/null
    else
        echo "deps: missing: ${missing_pkgs[*]}" >&2
        echo "deps: install them with: sudo apt-get install ${missing_pkgs[*]} libsox-fmt-all clang" >&2
        exit 1
    fi
fi
if ! command -v cargo >/dev/null; then
    echo "deps: cargo is missing: install Rust (rustup, https://rustup.rs), 1.85 or newer" >&2
    exit 1
fi
