#!/bin/bash
# The hardware-in-the-loop rig (docs/TESTING.md): Debian 12's own kernel under qemu, the host's
# root shared read-only over virtio-9p with a tmpfs overlay on top, the kernel's vivid camera and
# gpio-sim GPIO chip, and bodycamd as built on the host.
#
#   Hardware/rig/rig.sh prepare            download (Debian packages only), unpack, build gpio-sim
#   Hardware/rig/rig.sh run [SCENARIO...]  prepare, then run the scenarios (default: all)
#
# Environment: BIN (the folder with bodycamd and bodycamctl; required for run), RIG_CACHE (the
# download and build cache; default .hw-cache in the project, which git ignores), RIG_ACCEL
# (kvm or tcg; default kvm only when the CPU shows vmx or svm), RIG_CUTS (power cuts, default 20).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
source "$REPO/Hardware/rig/kernel.env"
CACHE=${RIG_CACHE:-$REPO/.hw-cache}
KDIR=$CACHE/kernel
MODDIR=$KDIR/lib/modules/$KERNEL_RELEASE
HEADERS=$KDIR/usr/src/linux-headers-$KERNEL_RELEASE
mkdir -p "$CACHE"
CACHE=$(cd "$CACHE" && pwd)
KDIR=$CACHE/kernel MODDIR=$KDIR/lib/modules/$KERNEL_RELEASE HEADERS=$KDIR/usr/src/linux-headers-$KERNEL_RELEASE

say() { echo "rig: $*" >&2; }
die() { echo "rig: error: $*" >&2; exit 1; }

# --- prepare ---------------------------------------------------------------------------------

download() {
    mkdir -p "$CACHE/debs"
    local want=(
        "linux-image-$KERNEL_RELEASE=$KERNEL_VERSION"
        "linux-headers-$KERNEL_RELEASE=$KERNEL_VERSION"
        "linux-headers-$KERNEL_ABI-common=$KERNEL_VERSION"
        "linux-kbuild-$KERNEL_SERIES=$KBUILD_VERSION"
        "linux-source-$KERNEL_SERIES=$SOURCE_VERSION"
    )
    local missing=() spec name version
    for spec in "${want[@]}"; do
        name=${spec%%=*} version=${spec#*=}
        ls "$CACHE/debs/${name}_${version}_"*.deb >/dev/null 2>&1 || missing+=("$spec")
    done
    [ ${#missing[@]} -eq 0 ] && return
    say "downloading ${missing[*]}"
    (cd "$CACHE/debs" && { apt-get download "${missing[@]}" || { apt-get update -qq && apt-get download "${missing[@]}"; }; }) ||
        die "apt cannot fetch the pinned kernel packages (Hardware/rig/kernel.env); run apt-get update, or pin the versions apt-cache madison linux-image-$KERNEL_RELEASE lists"
}

unpack() {
    [ -f "$KDIR/.unpacked-$KERNEL_VERSION" ] && return
    say "unpacking the kernel, its modules and headers"
    rm -rf "$KDIR" && mkdir -p "$KDIR"
    local deb
    for deb in "$CACHE"/debs/linux-image-* "$CACHE"/debs/linux-headers-* "$CACHE"/debs/linux-kbuild-*; do
        dpkg -x "$deb" "$KDIR"
    done
    # The headers' Makefile names its /usr/src path; here it lives in the cache.
    sed -i "s#include /usr/src/#include $KDIR/usr/src/#" "$HEADERS/Makefile"
    # The uncompressed kernel boots in seconds under TCG (the vmlinuz decompressor is slow there).
    python3 - "$KDIR/boot/vmlinuz-$KERNEL_RELEASE" "$KDIR/vmlinux" <<'PY'
import lzma, sys
data = open(sys.argv[1], 'rb').read()
start = data.find(b'\xfd7zXZ\x00')
if start < 0:
    sys.exit('no xz stream in ' + sys.argv[1])
image = lzma.LZMADecompressor().decompress(data[start:])
if image[:4] != b'\x7fELF':
    sys.exit('the xz stream is not an ELF kernel')
open(sys.argv[2], 'wb').write(image)
PY
    touch "$KDIR/.unpacked-$KERNEL_VERSION"
}

# Debian's 6.1 kernel has no GPIO_SIM (nor IRQ_SIM): build both as one out-of-tree module from
# the matching linux-source. irq_to_desc() is not exported in 6.1, hence the one-line change.
build_gpio_sim() {
    local ko=$MODDIR/extra/gpio-sim.ko
    [ -f "$ko" ] && return
    say "building gpio-sim from linux-source-$KERNEL_SERIES"
    local src=$CACHE/gpio-sim
    rm -rf "$src" && mkdir -p "$src/tree"
    dpkg-deb --fsys-tarfile "$CACHE"/debs/linux-source-"$KERNEL_SERIES"_*.deb |
        tar -xO "./usr/src/linux-source-$KERNEL_SERIES.tar.xz" | xz -dc |
        tar -x -C "$src/tree" --strip-components=1 \
            "linux-source-$KERNEL_SERIES/drivers/gpio/gpio-sim.c" \
            "linux-source-$KERNEL_SERIES/drivers/gpio/gpiolib.h" \
            "linux-source-$KERNEL_SERIES/kernel/irq/irq_sim.c"
    cp "$src/tree/drivers/gpio/gpio-sim.c" "$src/gpio-sim-main.c"
    cp "$src/tree/drivers/gpio/gpiolib.h" "$src/gpiolib.h"
    sed 's/handle_simple_irq(irq_to_desc(irqnum));/generic_handle_irq(irqnum);/' \
        "$src/tree/kernel/irq/irq_sim.c" >"$src/irq_sim.c"
    grep -q 'generic_handle_irq(irqnum);' "$src/irq_sim.c" || die "irq_sim.c changed upstream: the irq_to_desc patch no longer applies"
    printf 'obj-m := gpio-sim.o\ngpio-sim-y := gpio-sim-main.o irq_sim.o\n' >"$src/Kbuild"
    make -s -C "$HEADERS" M="$src" modules >"$src/build.log" 2>&1 || { cat "$src/build.log" >&2; die "gpio-sim did not build"; }
    mkdir -p "$MODDIR/extra"
    cp "$src/gpio-sim.ko" "$ko"
    busybox depmod -b "$KDIR" "$KERNEL_RELEASE"
}

# A busybox initramfs with just the modules that mount the host's root (virtio-9p, overlay).
build_initramfs() {
    local out=$CACHE/initramfs.cpio.gz
    [ "$out" -nt "$REPO/Hardware/rig/init" ] && [ "$out" -nt "$MODDIR/extra/gpio-sim.ko" ] && return
    say "building the initramfs"
    local root=$CACHE/initramfs
    rm -rf "$root" && mkdir -p "$root/bin" "$root/lib/modules/$KERNEL_RELEASE"
    cp "$(command -v busybox)" "$root/bin/busybox"
    file "$root/bin/busybox" | grep -q 'statically linked' || die "busybox is not the static one (install busybox-static)"
    cp "$REPO/Hardware/rig/init" "$root/init"
    cp "$MODDIR"/modules.dep "$MODDIR"/modules.alias "$root/lib/modules/$KERNEL_RELEASE/" 2>/dev/null || true
    local m dep
    for m in virtio_pci 9pnet_virtio 9p overlay virtio_blk ext4; do
        for dep in $(awk -v m="$m" -F': *' '{ n=$1; sub(".*/", "", n); sub("\\.ko$", "", n); gsub("-", "_", n) } n==m { print $1; if ($2 != "") print $2 }' "$MODDIR/modules.dep"); do
            mkdir -p "$root/lib/modules/$KERNEL_RELEASE/$(dirname "$dep")"
            cp "$MODDIR/$dep" "$root/lib/modules/$KERNEL_RELEASE/$dep"
        done
    done
    (cd "$root" && find . | busybox cpio -o -H newc 2>/dev/null | gzip -1) >"$out.tmp"
    mv "$out.tmp" "$out"
}

prepare() {
    for tool in qemu-system-x86_64 busybox python3 apt-get dpkg-deb xz make gcc-12 file; do
        command -v "$tool" >/dev/null || die "$tool is missing (make hw-deps installs it)"
    done
    download
    unpack
    build_gpio_sim
    build_initramfs
}

# --- run ---------------------------------------------------------------------------------------

accel() {
    if [ -n "${RIG_ACCEL:-}" ]; then echo "$RIG_ACCEL"; return; fi
    if [ -w /dev/kvm ] && grep -qE '\b(vmx|svm)\b' /proc/cpuinfo; then echo kvm; else echo tcg; fi
}

# qemu_command SCENARIO BOOT [extra qemu arguments...]: the guest for one boot of a scenario, in
# the array QEMU. It powers itself off when the scenario ends; its log and status land in $RESULTS.
qemu_command() {
    local scenario=$1 bootno=$2
    shift 2
    local accel_opts
    case "$(accel)" in
        kvm) accel_opts=(-accel kvm -cpu host) ;;
        *) accel_opts=(-accel tcg,thread=multi -cpu max) ;;
    esac
    QEMU=(qemu-system-x86_64 -machine q35 "${accel_opts[@]}" -smp 2 -m 3072
        -kernel "$KDIR/vmlinux" -initrd "$CACHE/initramfs.cpio.gz"
        -append "console=ttyS0 quiet loglevel=3 panic=-1 rig.repo=$REPO rig.cache=$CACHE rig.bin=$BIN rig.scenario=$scenario rig.boot=$bootno"
        -nographic -no-reboot -nodefaults -serial stdio
        -virtfs "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap"
        -virtfs "local,path=$RESULTS,mount_tag=results,security_model=none"
        "$@")
}

# env_file KEY=VALUE...: the settings this boot's guest reads (RIG_* from the host's environment
# too, such as RIG_CAMERA_SECONDS).
env_file() {
    { env | grep -E '^RIG_(CAMERA_SECONDS|SLOW_SECONDS|SEED|LINK_DOWN_SECONDS)=' || true; printf '%s\n' "$@"; } >"$RESULTS/rig.env"
}

# boot_once SCENARIO TIMEOUT [extra qemu arguments]: one boot that ends by itself; 0 when the
# scenario passed.
boot_once() {
    local scenario=$1 limit=$2
    shift 2
    qemu_command "$scenario" 0 "$@"
    timeout --foreground -k 5 "$limit" "${QEMU[@]}" </dev/null >"$RESULTS/$scenario.console" 2>&1 || true
    [ -f "$RESULTS/$scenario.0.status" ] || { say "$scenario: the guest did not finish within $limit s"; return 1; }
    return "$(cat "$RESULTS/$scenario.0.status")"
}

# A fresh ext4 image on the host (sparse), attached as a virtio-blk disk with the host's cache off.
make_disk() {  # make_disk PATH SIZE
    rm -f "$1"
    truncate -s "$2" "$1"
    mkfs.ext4 -q -F -L bodycam-store "$1"
}
disk_args() { echo "-drive file=$1,if=virtio,format=raw,cache=none,aio=threads"; }

scenario_camera() { env_file; boot_once camera 600; }
scenario_gpio() { env_file; boot_once gpio 300; }
scenario_camera_lost() { env_file; boot_once camera-lost 300; }
scenario_disk_full() {
    local disk=$CACHE/disks/full.img
    mkdir -p "$CACHE/disks"
    make_disk "$disk" 160M
    env_file
    # shellcheck disable=SC2046
    boot_once disk-full 300 $(disk_args "$disk")
}

# A store under dm-delay (500 ms on writes and flushes), and a clock that steps by 3 h.
scenario_slow_store() {
    local disk=$CACHE/disks/slow.img
    mkdir -p "$CACHE/disks"
    make_disk "$disk" 512M
    env_file
    # shellcheck disable=SC2046
    boot_once slow-store 600 $(disk_args "$disk")
}
scenario_clock() { env_file; boot_once clock 300; }
# The uplink to an office in a network namespace, over netem (LTE-like), the link cut mid-upload
# (a longer cut leaves more to catch up).
# (The boot's limit covers the scenario's own waits, so that a slow guest fails with its logs.)
scenario_link() { env_file; boot_once link $((720 + 2 * ${RIG_LINK_DOWN_SECONDS:-10})); }
# systemd as PID 1 with the project's own unit: a missing camera, SIGKILL, a hang, 20 crashes.
scenario_systemd() { env_file; boot_once systemd 900; }

# Power cuts: boot, record, kill qemu at a random moment; the next boot recovers and checks.
scenario_power_cut() {
    local cuts=${RIG_CUTS:-20} seed=${RIG_SEED:-$RANDOM}
    local disk=$CACHE/disks/store.img cut alive="" pid waited delay gap
    mkdir -p "$CACHE/disks"
    make_disk "$disk" 1G
    RANDOM=$seed
    say "power-cut: $cuts cuts, seed $seed (RIG_SEED=$seed repeats the moments)"
    for cut in $(seq 0 "$cuts"); do
        env_file "RIG_CUT=$cut" "RIG_CUTS=$cuts" ${alive:+"RIG_CUT_AT=$alive"}
        # shellcheck disable=SC2046
        qemu_command power-cut "$cut" $(disk_args "$disk")
        "${QEMU[@]}" </dev/null >"$RESULTS/power-cut.$cut.console" 2>&1 &
        pid=$!
        if [ "$cut" -eq "$cuts" ]; then
            timeout 300 tail --pid=$pid -f /dev/null || { kill -9 $pid; say "power-cut: the last boot did not finish"; return 1; }
            wait $pid || true
            break
        fi
        waited=0
        until [ -f "$RESULTS/power-cut.$cut.recording" ]; do
            if ! kill -0 $pid 2>/dev/null || [ $waited -ge 1200 ]; then
                kill -9 $pid 2>/dev/null || true
                say "power-cut: boot $cut did not start recording"
                return 1
            fi
            sleep 0.1
            waited=$((waited + 1))
        done
        # 0.5 to 6.5 s into the recording: in a fragment, at a fragment's end, at a segment's cut.
        delay=$(printf "%d.%03d" $((RANDOM % 6)) $((500 + RANDOM % 500)))
        sleep "$delay"
        kill -9 $pid
        wait $pid 2>/dev/null || true
        # Whole heartbeats only ($EPOCHREALTIME: 10 digits, a point, 6): the kill can cut the last
        # line short, and a cut-short time would read as long ago.
        alive=$(grep -a -o -E 'RIG-ALIVE [0-9]{10}\.[0-9]{6}' "$RESULTS/power-cut.$cut.console" | tail -1 | cut -d' ' -f2)
        [ -n "$alive" ] || { say "power-cut: no heartbeat from boot $cut"; return 1; }
        # How stale the last heartbeat can be: the longest gap between two in the last second.
        gap=$(grep -a -o -E 'RIG-ALIVE [0-9]{10}\.[0-9]{6}' "$RESULTS/power-cut.$cut.console" | tail -21 |
            awk '{ if (p) { g = $2 - p; if (g > m) m = g } p = $2 } END { printf "%.3f", m }')
        say "power-cut: cut $((cut + 1)) of $cuts after ${delay} s of recording (heartbeat gap ${gap} s)"
    done
    # Boots 1..cuts-1 were cut themselves after their check; the last one ends by itself.
    for cut in $(seq 1 "$cuts"); do
        grep -q "^RESULT cut=$cut " "$RESULTS/power-cut.$cut.log" 2>/dev/null && ! grep -q '^FAIL' "$RESULTS/power-cut.$cut.log" ||
            { say "power-cut: the check after cut $cut failed"; return 1; }
    done
    [ "$(cat "$RESULTS/power-cut.$cuts.status" 2>/dev/null)" = 0 ] || { say "power-cut: the last boot failed"; return 1; }
    grep -h '^RESULT cut=' "$RESULTS"/power-cut.*.log | awk '
        { for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
          if (v["loss_s"] + 0 > worst) worst = v["loss_s"] + 0; if (v["resume_gap_s"] + 0 > gap) gap = v["resume_gap_s"] + 0; n++ }
        END { printf "RESULT cuts=%d worst_loss_s=%.2f worst_resume_gap_s=%.2f\n", n, worst, gap }' >"$RESULTS/power-cut.summary"
}

SCENARIOS=(camera gpio camera-lost power-cut disk-full slow-store clock systemd link)
# Run by name only (none at present).
EXTRA_SCENARIOS=()

run() {
    [ -n "${BIN:-}" ] || die "BIN must name the folder holding bodycamd and bodycamctl"
    BIN=$(cd "$BIN" && pwd)
    prepare
    RESULTS=$CACHE/results
    rm -rf "$RESULTS" && mkdir -p "$RESULTS"
    local wanted=("$@") failed=() name started
    [ ${#wanted[@]} -gt 0 ] || wanted=("${SCENARIOS[@]}")
    say "kernel $KERNEL_RELEASE ($KERNEL_VERSION), accelerator $(accel), results in $RESULTS"
    for name in "${wanted[@]}"; do
        [[ " ${SCENARIOS[*]} ${EXTRA_SCENARIOS[*]} " == *" $name "* ]] || die "no scenario $name (there are: ${SCENARIOS[*]} ${EXTRA_SCENARIOS[*]})"
        started=$SECONDS
        if "scenario_${name//-/_}"; then
            echo "PASS $name ($((SECONDS - started)) s)"
        else
            echo "FAIL $name ($((SECONDS - started)) s)"
            failed+=("$name")
            for log in "$RESULTS/$name".*log; do [ -f "$log" ] && { echo "--- $log"; tail -60 "$log"; }; done
        fi
        # In boot order (power-cut.2 before power-cut.10), the summary last.
        for log in $(ls "$RESULTS/$name".*log 2>/dev/null | sort -V) "$RESULTS/$name.summary"; do
            [ -f "$log" ] && grep -h '^RESULT' "$log" | sed "s/^RESULT /  $name: /"
        done || true
    done
    [ ${#failed[@]} -eq 0 ] || die "failed: ${failed[*]}"
}

case "${1:-}" in
    prepare) prepare ;;
    run) shift; run "$@" ;;
    *) echo "usage: $0 prepare | run [SCENARIO...]   (scenarios: ${SCENARIOS[*]})" >&2; exit 64 ;;
esac
