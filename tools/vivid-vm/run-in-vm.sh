#!/usr/bin/env bash
# run-in-vm.sh: runs a shell command inside a throw-away Linux VM (qemu, TCG, no KVM) whose
# kernel has the `vivid` virtual camera driver loaded, so V4L2 capture code can be tested
# against a real kernel driver.
#
#   run-in-vm.sh [--vivid "MODULE PARAMS"] [--timeout SECS] [--add PATH]... [--out DIR]
#                [--mem MB] -- GUEST SHELL COMMAND...
#
#   --vivid "PARAMS"  module parameters for vivid, e.g. "n_devs=2 multiplanar=1,2
#                     node_types=1,1" (default: none, i.e. vivid's defaults). Also exported
#                     to the command as $VIVID_PARAMS, for re-loading the module.
#   --timeout SECS    wall-clock limit for the whole VM, boot included (default 120).
#   --add PATH        copies a file or directory into the guest as /work/<basename>; ELF
#                     files among them also get their shared libraries (from ldd, at the
#                     same paths, ELF interpreter included). Repeatable.
#   --out DIR         whatever the command leaves under /out in the guest is copied to DIR
#                     on the host (created if needed; existing files are overwritten).
#   --mem MB          guest memory (default 512). The initramfs (everything --add'ed)
#                     lives in RAM: allow about twice its size plus 200 MB.
#   COMMAND...        joined with spaces (like ssh) and run as `sh -c "COMMAND"` by busybox
#                     sh, in /work, with stdin from /dev/null, PATH=/work:/bin:/sbin:...
#
# The guest: busybox, the vivid module and its dependencies (in /lib/modules, so busybox
# `modprobe vivid` / `rmmod vivid` work), /proc, /sys, devtmpfs on /dev, tmpfs on /tmp,
# empty /out; everything runs as root.
#
# Output: the command's stdout is this script's stdout and its stderr this script's stderr
# (each on its own serial port, so no kernel messages are mixed in; streamed while it runs).
# Exit status: the command's exit status; 124 if the VM timed out or ended without reporting
# one (the tail of the serial console is printed on stderr), or if --out could not be
# brought back; 125 if `modprobe vivid PARAMS` failed (the command did not run); 3 if the
# kernel package cannot be obtained; 2 for usage errors. When the command fails (status
# != 0), the kernel messages logged while it ran are printed on stderr as well
# (EDGEVIT_VM_QUIET=1 suppresses that).
#
# Environment:
#   EDGEVIT_VM_CACHE       kernel cache (default <repo>/target/vivid-vm); the kernel package
#                          is downloaded (`apt-get download`) and unpacked once per version.
#   EDGEVIT_VM_KERNEL_PKG  kernel package to use (default: what linux-image-amd64 depends on).
#   EDGEVIT_VM_LOG         if set, the whole serial console log (kernel, init, dmesg on
#                          failure) is copied to this file.
#   EDGEVIT_VM_QUIET=1     no dmesg tail on stderr when the command fails.
#   EDGEVIT_VM_VERBOSE=1   progress and timings on stderr.
#
# Needs (see install-deps.sh): qemu-system-x86_64, a static /bin/busybox, cpio, kmod
# (depmod, modprobe), dpkg/apt for the first download, xz for .ko.xz modules. Runs as root
# or as a normal user (nothing is mounted on the host). See README.md for vivid's devices.
set -Eeuo pipefail

prog=run-in-vm.sh
trap 'echo "$prog: internal error (status $?) at line $LINENO: $BASH_COMMAND" >&2' ERR
die() {
    echo "$prog: $*" >&2
    exit 2
}
say() {
    if [ "${EDGEVIT_VM_VERBOSE:-0}" = 1 ]; then echo "$prog: $*" >&2; fi
}
help_text() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
usage() {
    help_text | sed -n '/^  run-in-vm.sh \[/,/^ *\[--mem/p' >&2
    echo "(--help for more)" >&2
    exit 2
}

vivid_params=""
timeout_s=120
mem_mb=512
out_dir=""
adds=()
while [ $# -gt 0 ]; do
    case "$1" in
        --vivid) [ $# -ge 2 ] || die "--vivid needs an argument"; vivid_params=$2; shift 2 ;;
        --vivid=*) vivid_params=${1#*=}; shift ;;
        --timeout) [ $# -ge 2 ] || die "--timeout needs an argument"; timeout_s=$2; shift 2 ;;
        --timeout=*) timeout_s=${1#*=}; shift ;;
        --add) [ $# -ge 2 ] || die "--add needs an argument"; adds+=("$2"); shift 2 ;;
        --add=*) adds+=("${1#*=}"); shift ;;
        --out) [ $# -ge 2 ] || die "--out needs an argument"; out_dir=$2; shift 2 ;;
        --out=*) out_dir=${1#*=}; shift ;;
        --mem) [ $# -ge 2 ] || die "--mem needs an argument"; mem_mb=$2; shift 2 ;;
        --mem=*) mem_mb=${1#*=}; shift ;;
        -h | --help) help_text; exit 0 ;;
        --) shift; break ;;
        *) echo "$prog: unexpected argument: $1 (the guest command comes after --)" >&2; usage ;;
    esac
done
[ $# -gt 0 ] || { echo "$prog: no guest command (after --)" >&2; usage; }
guest_cmd="$*"
[[ "$timeout_s" =~ ^[0-9]+$ ]] && [ "$timeout_s" -gt 0 ] || die "--timeout must be a positive integer"
[[ "$mem_mb" =~ ^[0-9]+$ ]] && [ "$mem_mb" -ge 128 ] || die "--mem must be an integer >= 128"
[[ "$vivid_params" != *$'\n'* ]] || die "--vivid must be one line"
for a in "${adds[@]+"${adds[@]}"}"; do
    [ -e "$a" ] || die "--add $a: no such file or directory"
done

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${EDGEVIT_VM_CACHE:-$repo/target/vivid-vm}

for tool in qemu-system-x86_64 cpio depmod modprobe; do
    command -v "$tool" >/dev/null 2>&1 ||
        die "$tool not found; run tools/vivid-vm/install-deps.sh (as root)"
done
busybox=/bin/busybox
bb_ldd=$(ldd "$busybox" 2>&1 || true)
[ -x "$busybox" ] && [[ "$bb_ldd" == *"not a dynamic executable"* ]] ||
    die "$busybox missing or not static; install busybox-static (tools/vivid-vm/install-deps.sh)"

t_start=$(date +%s.%N)
elapsed() { echo "$(date +%s.%N) $t_start" | awk '{printf "%.1f", $1 - $2}'; }

# ---------------------------------------------------------------------------------------------
# The kernel: vmlinuz plus vivid and its dependencies, cached per kernel version.
# $cache/<kver>/: vmlinuz, vmlinux (uncompressed, booted when present), modroot/lib/modules/
# <kver>/ (vivid, virtio_blk and their dependencies, uncompressed, with modules.dep), package
# (name and version) and .complete-v2, written last (v2: with the virtio modules for --out).

fail_kernel() {
    echo "$prog: cannot obtain the kernel package: $*" >&2
    echo "$prog: (needs apt package lists that know linux-image-amd64 and access to a Debian" \
        "mirror; run tools/vivid-vm/install-deps.sh, or set EDGEVIT_VM_KERNEL_PKG)" >&2
    exit 3
}

kpkg=${EDGEVIT_VM_KERNEL_PKG:-}
if [ -z "$kpkg" ]; then
    # `apt-cache depends` takes ~2 s; its answer is remembered until the package lists change.
    resolved=$cache/.resolved-linux-image-amd64
    lists=/var/lib/apt/lists
    if [ -s "$resolved" ] && [ -d "$lists" ] && [ "$resolved" -nt "$lists" ]; then
        kpkg=$(cat "$resolved")
    else
        kpkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
            awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }' || true)
        if [ -n "$kpkg" ] && mkdir -p "$cache" 2>/dev/null; then
            printf '%s\n' "$kpkg" >"$resolved.$$" && mv "$resolved.$$" "$resolved" || true
        fi
    fi
fi
if [ -z "$kpkg" ]; then
    # No package lists (or no apt): fall back on a kernel cached earlier, if there is one.
    cached=$(ls -1d "$cache"/*/.complete-v2 2>/dev/null | sort -V | tail -n 1 || true)
    [ -n "$cached" ] || fail_kernel "apt-cache does not know linux-image-amd64 and $cache has no kernel"
    kdir=$(dirname "$cached")
    kver=$(basename "$kdir")
    say "apt-cache does not know linux-image-amd64; using the cached kernel $kver"
else
    kver=${kpkg#linux-image-}
    [[ "$kver" =~ ^[0-9][A-Za-z0-9.+~-]*$ ]] || fail_kernel "unexpected package name $kpkg"
    kdir=$cache/$kver
fi

# Decompresses the kernel inside a bzImage ($1) to an ELF file ($2).
extract_vmlinux() {
    local img=$1 dest=$2 off
    local -a magics=($'\xfd7zXZ' $'\x28\xb5\x2f\xfd' $'\x1f\x8b\x08')
    local -a tools=("xz -dc --single-stream" "zstd -qdc" "gzip -dc")
    for i in 0 1 2; do
        command -v "${tools[$i]%% *}" >/dev/null 2>&1 || continue
        for off in $(LC_ALL=C grep -abo "${magics[$i]}" "$img" 2>/dev/null | cut -d: -f1 | head -n 5); do
            tail -c +$((off + 1)) "$img" | ${tools[$i]} >"$dest.tmp" 2>/dev/null || true
            if [ "$(head -c 4 "$dest.tmp" | od -An -c | tr -d ' ')" = '177ELF' ]; then
                mv "$dest.tmp" "$dest"
                return 0
            fi
        done
    done
    rm -f "$dest.tmp"
    return 1
}

fetch_kernel() {
    local tmp deb line mod rel
    command -v apt-get >/dev/null 2>&1 && command -v dpkg >/dev/null 2>&1 ||
        fail_kernel "apt-get/dpkg not found"
    mkdir -p "$cache"
    rm -rf "$cache"/.fetch.* # left by an earlier attempt that failed (we hold the lock)
    tmp=$(mktemp -d "$cache/.fetch.XXXXXX")
    echo "$prog: downloading $kpkg (once; cached in $kdir)" >&2
    (cd "$tmp" && apt-get download -q -o APT::Sandbox::User=root "$kpkg" >"$tmp/download.log" 2>&1) ||
        { cat "$tmp/download.log" >&2; fail_kernel "apt-get download $kpkg failed"; }
    deb=$(ls -1 "$tmp"/*.deb 2>/dev/null | head -n 1)
    [ -n "$deb" ] || fail_kernel "apt-get download $kpkg produced no .deb"
    dpkg -x "$deb" "$tmp/x" || fail_kernel "dpkg -x $deb failed"
    local src=$tmp/x
    [ -f "$src/boot/vmlinuz-$kver" ] || fail_kernel "$kpkg has no /boot/vmlinuz-$kver"
    # Debian >= 13 keeps modules in /usr/lib/modules; modprobe -d wants <dir>/lib/modules.
    if [ ! -d "$src/lib/modules/$kver" ] && [ -d "$src/usr/lib/modules/$kver" ]; then
        mkdir -p "$src/lib"
        ln -s ../usr/lib/modules "$src/lib/modules"
    fi
    depmod -b "$src" "$kver" || fail_kernel "depmod failed"
    local stage=$tmp/stage
    mkdir -p "$stage/modroot/lib/modules/$kver"
    cp "$src/boot/vmlinuz-$kver" "$stage/vmlinuz"
    # Under TCG, decompressing the bzImage takes ~6 s of every boot; a kernel with PVH support
    # boots from the uncompressed ELF directly (~1 s).
    if grep -q '^CONFIG_PVH=y' "$src/boot/config-$kver" 2>/dev/null; then
        extract_vmlinux "$stage/vmlinuz" "$stage/vmlinux" ||
            echo "$prog: note: cannot extract vmlinux; booting the compressed kernel (slower)" >&2
    fi
    for f in modules.order modules.builtin modules.builtin.modinfo; do
        [ -f "$src/lib/modules/$kver/$f" ] && cp "$src/lib/modules/$kver/$f" "$stage/modroot/lib/modules/$kver/"
    done
    modprobe -d "$src" -S "$kver" --show-depends vivid >"$tmp/deps" ||
        fail_kernel "$kpkg has no vivid module"
    # virtio-blk carries --out back to the host (serial is the fallback without it).
    for m in virtio_pci virtio_blk; do
        modprobe -d "$src" -S "$kver" --show-depends "$m" >>"$tmp/deps" 2>/dev/null ||
            echo "$prog: note: $kpkg has no $m module; --out will use the (slower) serial port" >&2
    done
    while read -r line; do
        set -- $line
        [ "${1:-}" = insmod ] || continue
        mod=$2
        rel=${mod#"$src"/lib/modules/"$kver"/}
        [ ! -e "$stage/modroot/lib/modules/$kver/${rel%.ko*}.ko" ] || continue
        mkdir -p "$stage/modroot/lib/modules/$kver/$(dirname "$rel")"
        case "$mod" in
            *.ko.xz) xz -dc "$mod" >"$stage/modroot/lib/modules/$kver/${rel%.xz}" ;;
            *.ko.zst) zstd -qdc "$mod" >"$stage/modroot/lib/modules/$kver/${rel%.zst}" ;;
            *.ko.gz) gzip -dc "$mod" >"$stage/modroot/lib/modules/$kver/${rel%.gz}" ;;
            *) cp "$mod" "$stage/modroot/lib/modules/$kver/$rel" ;;
        esac
    done <"$tmp/deps"
    # modules.order names the compressed files; the guest has them uncompressed.
    [ -f "$stage/modroot/lib/modules/$kver/modules.order" ] &&
        sed -i -E 's/\.ko\.(xz|zst|gz)$/.ko/' "$stage/modroot/lib/modules/$kver/modules.order"
    depmod -b "$stage/modroot" "$kver" 2>/dev/null || fail_kernel "depmod of the module subset failed"
    echo "$kpkg $(dpkg-deb -f "$deb" Version)" >"$stage/package"
    rm -rf "$kdir"
    mv "$stage" "$kdir"
    touch "$kdir/.complete-v2"
    rm -rf "$tmp"
}

if [ ! -f "$kdir/.complete-v2" ]; then
    mkdir -p "$cache"
    exec 9>"$cache/.lock"
    flock 9
    [ -f "$kdir/.complete-v2" ] || fetch_kernel
    flock -u 9
    exec 9>&-
fi
say "kernel $kver ($(cat "$kdir/package" 2>/dev/null || echo '?')) ready after $(elapsed) s"

# ---------------------------------------------------------------------------------------------
# The initramfs.

work=$(mktemp -d "${TMPDIR:-/tmp}/vivid-vm.XXXXXX")
qemu_pid=""
tail_pids=()
cleanup() {
    if [ -n "$qemu_pid" ]; then kill "$qemu_pid" 2>/dev/null || true; fi
    for p in "${tail_pids[@]+"${tail_pids[@]}"}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

root=$work/root
mkdir -p "$root"/{bin,sbin,etc,proc,sys,dev,tmp,work,out,lib64,usr/bin,usr/sbin,lib/x86_64-linux-gnu,run,var}
ln -s ../tmp "$root/var/tmp"
cp "$busybox" "$root/bin/busybox"
cp -a "$kdir/modroot/lib/modules" "$root/lib/"

# Copies the shared libraries of an ELF file (ldd's view on the host) to the same paths.
copy_libs() {
    local f=$1 line lib deps
    # ldd fails on static and foreign executables: nothing to copy then.
    deps=$(ldd "$f" 2>/dev/null) || return 0
    while read -r line; do
        case "$line" in
            *"=> not found"*) echo "$prog: warning: $f: ${line%% =>*} not found on the host" >&2; continue ;;
            *"=> /"*) lib=${line#*=> }; lib=${lib%% (*} ;;
            /*) lib=${line%% (*} ;;
            *) continue ;;
        esac
        [ -e "$root$lib" ] && continue
        mkdir -p "$root$(dirname "$lib")"
        cp -L "$lib" "$root$lib"
    done <<<"$deps"
}
is_elf() { [ -f "$1" ] && [ "$(head -c 4 "$1" | od -An -c | tr -d ' ')" = '177ELF' ]; }

for a in "${adds[@]+"${adds[@]}"}"; do
    name=$(basename "$a")
    [ ! -e "$root/work/$name" ] || die "--add $a: /work/$name added twice"
    cp -a -L "$a" "$root/work/$name" 2>/dev/null || cp -a "$a" "$root/work/$name"
    while IFS= read -r -d '' f; do
        if is_elf "$f"; then copy_libs "$f"; fi
    done < <(find "$root/work/$name" -type f -print0)
done

# A loader cache for the libraries copied in (the loader's default directories would do for
# Debian's, but not for libraries found through ld.so.conf or LD_LIBRARY_PATH on the host).
if [ "${#adds[@]}" -gt 0 ] && command -v ldconfig >/dev/null 2>&1; then
    find "$root" -path "$root/lib/modules" -prune -o -type f \( -name '*.so' -o -name '*.so.[0-9]*' \) \
        -printf '/%P\n' | sed 's|/[^/]*$||' | sort -u >"$root/.ld.so.conf"
    mv "$root/.ld.so.conf" "$root/etc/ld.so.conf"
    ldconfig -r "$root" 2>/dev/null || rm -f "$root/etc/ld.so.cache"
fi
printf '%s\n' "$guest_cmd" >"$root/etc/edgevit-cmd"
printf '%s\n' "$vivid_params" >"$root/etc/vivid-params"
[ -z "$out_dir" ] || touch "$root/etc/edgevit-want-out"

cat >"$root/init" <<'INIT'
#!/bin/busybox sh
# Generated by tools/vivid-vm/run-in-vm.sh. Console (ttyS0): boot log and markers; ttyS1: the
# command's stdout; ttyS2: its stderr; /dev/vda (or ttyS3 without virtio): the tar of /out.
/bin/busybox mount -t proc proc /proc
/bin/busybox --install -s /bin
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
mkdir -p /dev/pts /dev/shm /run
mount -t tmpfs tmpfs /dev/shm
# Kernel warnings and worse still reach the console (the log shown on a timeout), not
# the boot chatter.
dmesg -n 5
export PATH=/work:/bin:/sbin:/usr/bin:/usr/sbin HOME=/tmp TERM=dumb
export VIVID_PARAMS="$(cat /etc/vivid-params)"
for t in 1 2 3; do stty -F /dev/ttyS$t raw -echo 2>/dev/null || echo "init: no /dev/ttyS$t"; done
echo "EDGEVIT-VM-BOOTED $(cut -d' ' -f1 /proc/uptime)"
finish() {
    echo "EDGEVIT-VM-EXIT $1"
    sync
    poweroff -f
    sleep 10
}
# shellcheck disable=SC2086
if ! modprobe vivid $VIVID_PARAMS; then
    echo "EDGEVIT-VM-DMESG-BEGIN"; dmesg | sed -n '/Run \/init/,$p' | tail -n 30; echo "EDGEVIT-VM-DMESG-END"
    echo "init: modprobe vivid $VIVID_PARAMS failed" >/dev/ttyS2
    finish 125
fi
echo "EDGEVIT-VM-READY $(cut -d' ' -f1 /proc/uptime)"
boot_lines=$(dmesg | wc -l)
cd /work
sh -c "$(cat /etc/edgevit-cmd)" </dev/null >/dev/ttyS1 2>/dev/ttyS2
rc=$?
echo "EDGEVIT-VM-DONE $(cut -d' ' -f1 /proc/uptime)"
if [ "$rc" -ne 0 ]; then
    # The kernel messages logged while the command ran.
    echo "EDGEVIT-VM-DMESG-BEGIN"; dmesg | tail -n +$((boot_lines + 1)) | tail -n 100; echo "EDGEVIT-VM-DMESG-END"
fi
if [ -f /etc/edgevit-want-out ]; then
    # A raw virtio disk (fast); the serial port ttyS3 if that is missing (~250 KB/s).
    modprobe virtio_pci 2>/dev/null && modprobe virtio_blk 2>/dev/null
    for i in 1 2 3 4 5 6 7 8 9 10; do [ -b /dev/vda ] && break; sleep 0.2; done
    if [ -b /dev/vda ]; then
        if tar -C /out -cf /dev/vda . && sync; then
            echo "EDGEVIT-VM-OUT disk"
        else
            echo "EDGEVIT-VM-OUT-FAILED"
        fi
    elif tar -C /out -cf /tmp/.out.tar . ; then
        cat /tmp/.out.tar >/dev/ttyS3
        echo "EDGEVIT-VM-OUT serial $(wc -c </tmp/.out.tar)"
        rm -f /tmp/.out.tar
    else
        echo "EDGEVIT-VM-OUT-FAILED"
    fi
fi
finish "$rc"
INIT
chmod +x "$root/init"

(cd "$root" && find . -print0 | cpio --null -o -H newc --quiet) >"$work/initrd"
say "initramfs $(($(stat -c %s "$work/initrd") / 1024)) KiB after $(elapsed) s"

# ---------------------------------------------------------------------------------------------
# The VM.

console=$work/console.log
kernel=$kdir/vmlinuz
[ ! -f "$kdir/vmlinux" ] || kernel=$kdir/vmlinux
for f in console.log stdout stderr out.tar qemu.log; do : >"$work/$f"; done
qemu=(qemu-system-x86_64 -accel tcg -m "$mem_mb" -smp 1 -nodefaults -no-user-config
    -display none -vga none -no-reboot
    -kernel "$kernel" -initrd "$work/initrd"
    -append "console=ttyS0 quiet loglevel=3 panic=-1 8250.nr_uarts=4 random.trust_cpu=on"
    -chardev "file,id=s0,path=$console,append=on" -serial chardev:s0
    -chardev "file,id=s1,path=$work/stdout,append=on" -serial chardev:s1
    -chardev "file,id=s2,path=$work/stderr,append=on" -serial chardev:s2
    -chardev "file,id=s3,path=$work/out.tar,append=on" -serial chardev:s3
    -monitor none)
if [ -n "$out_dir" ]; then
    # Sparse; /out lives in guest RAM, so it cannot hold more than --mem.
    truncate -s "$((mem_mb + 64))M" "$work/out.img"
    qemu+=(-drive "file=$work/out.img,format=raw,if=none,id=out,cache=unsafe"
        -device virtio-blk-pci,drive=out)
fi

timeout -k 5 "$timeout_s" "${qemu[@]}" </dev/null >"$work/qemu.log" 2>&1 &
qemu_pid=$!
# Stream the command's output while the VM runs; tail exits once qemu has.
tail -c +1 -s 0.2 --pid="$qemu_pid" -f "$work/stdout" &
tail_pids+=($!)
tail -c +1 -s 0.2 --pid="$qemu_pid" -f "$work/stderr" >&2 &
tail_pids+=($!)
qemu_rc=0
wait "$qemu_pid" || qemu_rc=$?
qemu_pid=""
for p in "${tail_pids[@]}"; do wait "$p" 2>/dev/null || true; done
tail_pids=()
say "VM finished after $(elapsed) s (qemu status $qemu_rc)"

[ -z "${EDGEVIT_VM_LOG:-}" ] || cp "$console" "$EDGEVIT_VM_LOG"
console_text=$(tr -d '\r' <"$console")
show_console_tail() {
    echo "$prog: ---- serial console (last 60 lines) ----" >&2
    printf '%s\n' "$console_text" | tail -n 60 >&2
    echo "$prog: ---- qemu ----" >&2
    tail -n 20 "$work/qemu.log" >&2
}

exit_line=$(printf '%s\n' "$console_text" | grep -a -E '^EDGEVIT-VM-EXIT [0-9]+$' | tail -n 1 || true)
if [ -z "$exit_line" ]; then
    if [ "$qemu_rc" -eq 124 ] || [ "$qemu_rc" -eq 137 ]; then
        echo "$prog: the VM timed out after $timeout_s s" >&2
    else
        echo "$prog: the VM ended (qemu status $qemu_rc) without reporting the command's exit status" >&2
    fi
    show_console_tail
    exit 124
fi
rc=${exit_line#EDGEVIT-VM-EXIT }

if [ "$rc" -ne 0 ] && [ "${EDGEVIT_VM_QUIET:-0}" != 1 ]; then
    kmsgs=$(printf '%s\n' "$console_text" | awk '/^EDGEVIT-VM-DMESG-END/{p=0} p{print "[guest dmesg] " $0} /^EDGEVIT-VM-DMESG-BEGIN/{p=1}' | tail -n 40)
    if ! printf '%s\n' "$console_text" | grep -q '^EDGEVIT-VM-READY'; then
        echo "$prog: loading vivid failed (status $rc; the command did not run); kernel log:" >&2
    elif [ -n "$kmsgs" ]; then
        echo "$prog: the command exited with status $rc; kernel messages logged while it ran:" >&2
    fi
    if [ -n "$kmsgs" ]; then
        printf '%s\n' "$kmsgs" >&2
    fi
fi

if [ -n "$out_dir" ]; then
    out_line=$(printf '%s\n' "$console_text" | grep -a -E '^EDGEVIT-VM-OUT' | tail -n 1 || true)
    case "$out_line" in
        "EDGEVIT-VM-OUT disk")
            mkdir -p "$out_dir"
            tar -C "$out_dir" -xf "$work/out.img" || { echo "$prog: --out: cannot unpack into $out_dir" >&2; exit 124; }
            ;;
        "EDGEVIT-VM-OUT serial "[0-9]*)
            want=${out_line#EDGEVIT-VM-OUT serial }
            got=$(stat -c %s "$work/out.tar")
            if [ "$got" -ne "$want" ]; then
                echo "$prog: --out: received $got of $want bytes of the tar of /out" >&2
                exit 124
            fi
            mkdir -p "$out_dir"
            tar -C "$out_dir" -xf "$work/out.tar" || { echo "$prog: --out: cannot unpack into $out_dir" >&2; exit 124; }
            ;;
        *)
            echo "$prog: --out: the guest did not send /out ($out_line)" >&2
            exit 124
            ;;
    esac
fi
say "done after $(elapsed) s; guest: $(printf '%s\n' "$console_text" | grep -a -E '^EDGEVIT-VM-(BOOTED|READY|DONE)' | tr '\n' ' ')"
exit "$rc"
