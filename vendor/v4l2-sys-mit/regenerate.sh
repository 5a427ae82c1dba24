#!/usr/bin/env bash
# Regenerates the bindings of this crate (developers only; needs libclang, bindgen-cli 0.65.1
# from crates.io and, for aarch64, Debian's libc6-dev-arm64-cross and linux-libc-dev-arm64-cross):
#   cargo install bindgen-cli --version 0.65.1 --locked
#   bash vendor/v4l2-sys-mit/regenerate.sh
# tests/v4l2_bindings.rs checks the committed files against the installed kernel header.
set -euo pipefail
cd "$(dirname "$0")"
bindgen wrapper.h -o src/x86_64.rs
bindgen wrapper.h -o src/aarch64.rs -- --target=aarch64-linux-gnu -I/usr/aarch64-linux-gnu/include
