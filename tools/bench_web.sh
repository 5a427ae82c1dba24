#!/usr/bin/env bash
# What the web page costs the frame loop: `edgevit bench --frames` end to end (the pipelined
# FPS), in four ways, alternating, ROUNDS times:
#   off      no [web];
#   idle     the page served, nobody looking;
#   polled   what an open live view asks of the board, without a browser on the board's CPUs:
#            the camera's snapshot and /api/cameras once a second (curl);
#   browser  the live view open in headless Chromium on this same machine (the browser's own
#            CPU included: on a board the browser is on another machine).
# Needs the built binary (BIN, default target/debug/edgevit) and Debian's chromium.
#   bash tools/bench_web.sh [ROUNDS] [MODEL] [FRAMES]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-2}
model=${2:-models/vit-tiny-int8}
frames=${3:-600}
bin=${BIN:-target/debug/edgevit}
port=${PORT:-8097}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

fps() { python3 -c 'import json,sys; print(json.loads(sys.stdin.read().splitlines()[-1])["pipelined_fps"])'; }

# One end-to-end run with the page served, while `$1` looks at it.
served() {
  "$bin" bench --frames "$frames" --model "$model" --threads 1 --web "127.0.0.1:$port" \
    2>/dev/null >"$work/out.json" &
  local bench=$! looker=""
  # The page exists once the end-to-end part starts.
  until curl -s -o /dev/null "http://127.0.0.1:$port/api/health"; do
    kill -0 "$bench" 2>/dev/null || break
    sleep 0.05
  done
  case "$1" in
    polled)
      (while kill -0 "$bench" 2>/dev/null; do
         curl -s -o /dev/null "http://127.0.0.1:$port/api/cameras/cam0/snapshot.jpg" || true
         curl -s -o /dev/null "http://127.0.0.1:$port/api/cameras" || true
         sleep 1
       done) &
      looker=$! ;;
    browser)
      chromium --headless=new --no-sandbox --disable-gpu --disable-quic --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync \
        --user-data-dir="$work/chromium" --remote-debugging-port=0 \
        "http://127.0.0.1:$port/" >/dev/null 2>&1 &
      looker=$! ;;
  esac
  wait "$bench"
  if [ -n "$looker" ]; then kill "$looker" 2>/dev/null || true; wait "$looker" 2>/dev/null || true; fi
  fps <"$work/out.json"
}

echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores; build: $bin; model: $model; $frames frames of 1920x1080 YUYV, 1 inference thread"
for r in $(seq "$rounds"); do
  off=$("$bin" bench --frames "$frames" --model "$model" --threads 1 2>/dev/null | fps)
  idle=$(served idle)
  polled=$(served polled)
  browser=$(served browser)
  python3 -c "
off, idle, polled, browser = $off, $idle, $polled, $browser
print(f'round=$r off={off} idle={idle} polled={polled} browser={browser} '
      f'idle/off={idle/off:.3f} polled/off={polled/off:.3f} browser/off={browser/off:.3f}')"
done
