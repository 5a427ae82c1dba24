#!/usr/bin/env bash
# Installs everything `cargo test` needs on a Debian 12 machine, as root (`.ci/run` calls it):
# mosquitto (the MQTT tests start real brokers), v4l-utils and the vivid VM's qemu, busybox,
# cpio, kmod and xz (the camera tests; the kernel package itself is fetched by the VM script on
# first use), gcc and the kernel headers (the V4L2 bindings check), and systemd-analyze (the
# unit check). Nothing that is already installed is installed again.
#
#   sudo bash tools/install-test-deps.sh
#
# The conformance tests also need the shared reference models beside the repository
# (../shared, or EDGEVIT_SHARED_DIR); they come with the project, not from a package.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
    echo "install-test-deps.sh: must run as root (apt-get install): sudo bash $0" >&2
    exit 1
fi
# gcc-aarch64-linux-gnu, libc6-dev-arm64-cross and qemu-user: the aarch64 cross build and its
# tests under qemu-aarch64 (.ci/run). chromium and chromium-driver: the web page's browser test
# (tests/web_browser.rs drives Debian's Chromium through chromedriver).
packages=(mosquitto gcc linux-libc-dev systemd gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user chromium chromium-driver)
missing=()
for p in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [ "$status" = "install ok installed" ] || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi
# qemu, busybox, cpio, kmod, xz and v4l-utils for the vivid camera VM.
bash tools/vivid-vm/install-deps.sh --with-v4l-utils
# ONNX Runtime's C library for the `ort` backend's tests: the one inside the PyPI wheel (no
# Debian package has it), unpacked to /opt/edgevit-test/onnxruntime.
ORT_VERSION=1.31.1
ORT_DIR=/opt/edgevit-test/onnxruntime
if [ ! -e "$ORT_DIR/libonnxruntime.so.$ORT_VERSION" ]; then
    work=$(mktemp -d)
    python3 -m pip download --quiet --no-deps --only-binary=:all: "onnxruntime==$ORT_VERSION" -d "$work"
    python3 -m zipfile -e "$work"/onnxruntime-*.whl "$work/unpacked"
    mkdir -p "$ORT_DIR"
    cp "$work"/unpacked/onnxruntime/capi/libonnxruntime*.so* "$ORT_DIR/"
    rm -rf "$work"
fi
