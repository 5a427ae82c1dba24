#!/usr/bin/env bash
# Installs what tools/vivid-vm/run-in-vm.sh needs on a Debian 12 (bookworm) machine, as root.
# Idempotent: runs `apt-get update` only when a package is missing or apt does not know the
# kernel package yet, and installs nothing that is already there.
#
#   tools/vivid-vm/install-deps.sh [--with-v4l-utils]
#
# --with-v4l-utils also installs v4l-utils (v4l2-ctl), handy for exploring vivid in the guest
# (`run-in-vm.sh --add "$(command -v v4l2-ctl)" -- v4l2-ctl --list-devices`); the tests
# themselves do not need it.
#
# The kernel itself (linux-image-<version>-amd64, ~70 MB) is fetched by run-in-vm.sh on first
# use with `apt-get download` and cached under target/vivid-vm/; nothing is installed for it.
set -euo pipefail

packages=(qemu-system-x86 busybox-static cpio kmod xz-utils)
case "${1:-}" in
    --with-v4l-utils) packages+=(v4l-utils) ;;
    "") ;;
    -h | --help)
        sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "install-deps.sh: unknown argument: $1" >&2
        exit 2
        ;;
esac

if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps.sh: must run as root (apt-get install)" >&2
    exit 1
fi

missing=()
for p in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [ "$status" = "install ok installed" ] || missing+=("$p")
done

# run-in-vm.sh resolves the kernel package with `apt-cache depends linux-image-amd64` and
# fetches it with `apt-get download`, so the package lists must be present.
need_update=0
[ "${#missing[@]}" -eq 0 ] || need_update=1
apt-cache show linux-image-amd64 >/dev/null 2>&1 || need_update=1

export DEBIAN_FRONTEND=noninteractive
if [ "$need_update" -eq 1 ]; then
    apt-get update -q
fi
if [ "${#missing[@]}" -gt 0 ]; then
    echo "install-deps.sh: installing ${missing[*]}" >&2
    apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# busybox-static must provide a static /bin/busybox (the dynamic `busybox` package would not
# run in the guest).
bb_ldd=$(ldd /bin/busybox 2>&1 || true)
if [[ "$bb_ldd" != *"not a dynamic executable"* ]]; then
    echo "install-deps.sh: /bin/busybox is not statically linked (is busybox-static installed?)" >&2
    exit 1
fi
echo "install-deps.sh: ok" >&2
