#!/usr/bin/env bash
# Checks an edgevit .deb: its contents, then installs it with dpkg into a throwaway root and
# runs it there (`edgevit check` on the installed configuration, then the service's own
# command for a few seconds). Needs root (dpkg --root, chroot). `.ci/run` calls it on the
# package made from the test build:
#
#   cargo deb --no-build --profile dev -o target/deb/ && bash tools/check-deb.sh target/deb/edgevit_*.deb
set -euo pipefail
cd "$(dirname "$0")/.."
deb=${1:?usage: check-deb.sh PACKAGE.deb}
fail() { echo "check-deb: FAIL: $*" >&2; exit 1; }

# 1. Contents.
contents=$(dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./|/|')
for path in /usr/bin/edgevit /etc/edgevit/edgevit.toml /lib/systemd/system/edgevit.service \
    /usr/share/doc/edgevit/README.md /usr/share/doc/edgevit/copyright \
    /usr/share/doc/edgevit/docs/getting-started.md /usr/share/doc/edgevit/docs/engineering/benchmarks.md \
    /usr/share/edgevit/models/vit-mnist/model.toml /usr/share/edgevit/models/vit-mnist/model.onnx \
    /usr/share/edgevit/models/vit-mnist/labels.txt /usr/share/edgevit/models/vit-mnist/selftest/logits.npy \
    /usr/share/edgevit/models/vit-mnist/samples/digit-7-8.png \
    /usr/share/edgevit/models/transreid-tiny/model.onnx /usr/share/edgevit/models/centernet-coco/centernet_mbv3_coco.onnx \
    /usr/share/edgevit/models/centernet-coco/selftest/detections.npy \
    /usr/share/edgevit/models/face-descriptor/face_descriptor_resnet.onnx \
    /usr/share/edgevit/models/blazeface/face_detection_short_range.onnx \
    /usr/share/doc/edgevit/board-configs/door-faces.toml /usr/share/doc/edgevit/board-configs/rk3588.toml \
    /usr/share/doc/edgevit/examples/mosquitto-fleet.acl; do
    grep -qxF "$path" <<<"$contents" || fail "$path is not in the package"
done
dpkg-deb -f "$deb" Depends | grep -q libc6 || fail "no libc6 dependency"
[ "$(dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles)" = "/etc/edgevit/edgevit.toml" ] \
    || fail "/etc/edgevit/edgevit.toml is not a conffile"
if dpkg-deb --ctrl-tarfile "$deb" | tar -t | grep -qE 'postinst|prerm|postrm|preinst'; then
    fail "maintainer scripts: enabling the service is left to the user"
fi
cmp <(dpkg-deb --fsys-tarfile "$deb" | tar -xO ./lib/systemd/system/edgevit.service) deploy/edgevit.service \
    || fail "the packaged unit differs from deploy/edgevit.service"
echo "check-deb: contents ok ($(wc -l <<<"$contents") entries)"

# The binary: for the package's architecture, needing no newer C library than it declares.
arch=$(dpkg-deb -f "$deb" Architecture)
unpacked=$(mktemp -d)
dpkg-deb -x "$deb" "$unpacked"
machine=$(od -An -tx1 -j18 -N2 "$unpacked/usr/bin/edgevit" | tr -d ' \n')
case "$arch" in
    amd64) want_machine=3e00 objdump=objdump ;;
    arm64) want_machine=b700 objdump=aarch64-linux-gnu-objdump ;;
    *) fail "unexpected architecture $arch" ;;
esac
[ "$machine" = "$want_machine" ] || fail "/usr/bin/edgevit is not an $arch program (ELF machine $machine)"
needed=$("$objdump" -T "$unpacked/usr/bin/edgevit" | grep -oE 'GLIBC_[0-9.]+' | sed 's/GLIBC_//' | sort -V | tail -1)
declared=$(dpkg-deb -f "$deb" Depends | sed -nE 's/.*libc6 \(>= ([0-9.]+)\).*/\1/p')
[ "$(printf '%s\n%s\n' "$needed" "$declared" | sort -V | tail -1)" = "$declared" ] \
    || fail "the binary needs glibc $needed, the package declares libc6 >= $declared"
rm -rf "$unpacked"
echo "check-deb: $arch binary, glibc >= $needed needed, libc6 >= $declared declared"
if [ "$arch" != "$(dpkg --print-architecture)" ]; then
    echo "check-deb: $arch package: contents and binary checked; installing and starting it is for its board"
    exit 0
fi

# 2. Install into a throwaway root with dpkg.
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates" "$root/var/lib/dpkg/triggers"
touch "$root/var/lib/dpkg/status" "$root/var/lib/dpkg/available"
dpkg --root="$root" --log=/dev/null --force-depends -i "$deb" >/dev/null 2>&1
dpkg --root="$root" -s edgevit | grep -q "^Status: install ok installed" || fail "dpkg did not install it"
# What the package depends on (the C library), and the state directory systemd would make.
for lib in $(ldd "$root/usr/bin/edgevit" | grep -oE '/[^ ]+'); do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
done
mkdir -p "$root/var/lib/edgevit"

# 3. Start it there: the installed configuration checks, and the service's command runs.
check=$(chroot "$root" /usr/bin/edgevit check --config /etc/edgevit/edgevit.toml 2>/dev/null) \
    || { echo "$check"; fail "edgevit check failed in the installed root"; }
grep -q "^PASS /etc/edgevit/edgevit.toml" <<<"$check" || { echo "$check"; fail "no PASS"; }
echo "$check"
out=$(timeout -s INT 4 chroot "$root" /usr/bin/edgevit run --config /etc/edgevit/edgevit.toml 2>/dev/null || true)
results=$(grep -c '"task":"classify"' <<<"$out" || true)
[ "$results" -ge 2 ] || { echo "$out"; fail "the installed service gave $results results in 4 s"; }
echo "check-deb: installed into a throwaway root; edgevit check PASS; the service's command gave $results results in 4 s"
