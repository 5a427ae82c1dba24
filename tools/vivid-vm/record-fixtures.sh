#!/usr/bin/env bash
# Records the raw vivid frames in tests/fixtures/vivid/ (see the README.md there), and checks
# that the multi-planar node gives the same bytes as the single-planar one.
#
#   tools/vivid-vm/record-fixtures.sh [DIR]      (default: tests/fixtures/vivid)
#
# Needs v4l2-ctl on the host (apt-get install v4l-utils, or install-deps.sh --with-v4l-utils);
# it is copied into the guest with its libraries.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
dest=${1:-$repo/tests/fixtures/vivid}
v4l2ctl=$(command -v v4l2-ctl) || {
    echo "record-fixtures.sh: v4l2-ctl not found (apt-get install v4l-utils)" >&2
    exit 1
}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Device 0 (/dev/video0) is single-planar, device 1 (/dev/video1) multi-planar; input 0
# ("Webcam 0") of each, 320x180 (the webcam input has no 320x240), OSD text off, the default
# 75% colour bars.
"$here/run-in-vm.sh" --vivid "n_devs=2 multiplanar=1,2 node_types=1,1" --add "$v4l2ctl" \
    --out "$tmp" -- '
set -e
uname -r > /out/kernel
for d in 0 1; do
    v4l2-ctl -d$d --set-ctrl osd_text_mode=2
    v4l2-ctl -d$d --get-ctrl test_pattern,osd_text_mode
done
for f in YUYV:yuyv NV12:nv12 GREY:grey RGB3:rgb24 BGR3:bgr24; do
    v4l2-ctl -d0 --set-fmt-video=width=320,height=180,pixelformat=${f%%:*}
    v4l2-ctl -d0 --stream-mmap --stream-skip=2 --stream-count=1 --stream-to=/out/bars-320x180.${f#*:}
done
v4l2-ctl -d0 --get-fmt-video
# The same from the multi-planar node: NM12 is NV12 with the planes in two buffers
# (v4l2-ctl writes them one after the other), NV12 there is one contiguous plane.
for f in YUYV:yuyv NV12:nv12 NM12:nv12 GREY:grey RGB3:rgb24; do
    v4l2-ctl -d1 --set-fmt-video=width=320,height=180,pixelformat=${f%%:*}
    v4l2-ctl -d1 --stream-mmap --stream-skip=2 --stream-count=1 --stream-to=/out/mplane-${f%%:*}.${f#*:}
done
v4l2-ctl -d1 --get-fmt-video
'

for f in yuyv nv12 grey rgb24; do
    fourcc=$(case $f in yuyv) echo YUYV ;; nv12) echo NV12 ;; grey) echo GREY ;; rgb24) echo RGB3 ;; esac)
    cmp "$tmp/bars-320x180.$f" "$tmp/mplane-$fourcc.$f"
done
cmp "$tmp/bars-320x180.nv12" "$tmp/mplane-NM12.nv12"
echo "record-fixtures.sh: the multi-planar node gives the same bytes (YUYV, NV12, NM12, GREY, RGB3)" >&2
mkdir -p "$dest"
cp "$tmp"/bars-320x180.* "$dest/"
echo "record-fixtures.sh: kernel $(cat "$tmp/kernel"); wrote $(ls "$tmp"/bars-320x180.* | wc -l) files to $dest" >&2
