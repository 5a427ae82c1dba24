#!/usr/bin/env bash
# Lets this x86_64 machine run aarch64 Linux programs through qemu-aarch64 (binfmt_misc), so
# that the tests of an aarch64 build can start the aarch64 `edgevit` binary they test, as
# they do on x86_64. Run as root; idempotent. The programs also need
# QEMU_LD_PREFIX=/usr/aarch64-linux-gnu (Debian's libc6-arm64-cross) in their environment.
set -euo pipefail
[ -x /usr/bin/qemu-aarch64 ] || { echo "qemu-aarch64 is missing: apt-get install qemu-user" >&2; exit 1; }
dir=/proc/sys/fs/binfmt_misc
[ -e "$dir/register" ] || mount -t binfmt_misc binfmt_misc "$dir"
if [ ! -e "$dir/qemu-aarch64" ]; then
    magic='\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00'
    mask='\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff'
    printf ':qemu-aarch64:M::%s:%s:/usr/bin/qemu-aarch64:' "$magic" "$mask" >"$dir/register"
fi
echo "qemu-aarch64-binfmt: $(head -1 "$dir/qemu-aarch64")"
