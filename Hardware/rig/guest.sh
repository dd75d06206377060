#!/bin/bash
# Runs as PID 1 inside the rig's guest (see Hardware/rig/init): the host's root, read-only, under
# a tmpfs overlay. Makes the unpacked kernel's modules reachable, runs the scenario the kernel
# command line names (it loads vivid and gpio-sim itself), writes its log and exit status into
# the results share, and powers off.
set -uo pipefail
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc || { echo "rig: cannot mount /proc"; ls -ld /proc; }
mount -t sysfs sysfs /sys
# /tmp stays the overlay's (writes land in its tmpfs): the project itself may live under the
# host's /tmp.
mount -t tmpfs tmpfs /run/lock 2>/dev/null || true
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts

cmdline_value() { tr ' ' '\n' </proc/cmdline | sed -n "s/^$1=//p"; }
REPO=$(cmdline_value rig.repo)
SCENARIO=$(cmdline_value rig.scenario)
export RIG_SCENARIO=$SCENARIO
export RIG_REPO="$REPO" RIG_CACHE=$(cmdline_value rig.cache) RIG_BIN=$(cmdline_value rig.bin)
export RIG_RESULTS=/run/rig/results RIG_BOOT=$(cmdline_value rig.boot)
# Settings the host passes on (RIG_* variables), e.g. how long to record.
[ -f "$RIG_RESULTS/rig.env" ] && set -a && source "$RIG_RESULTS/rig.env" && set +a
KVER=$(uname -r)
mkdir -p "/lib/modules/$KVER"
mount --bind "$RIG_CACHE/kernel/lib/modules/$KVER" "/lib/modules/$KVER"
# The kernel's own module requests (ext4 asks for crc32c, for one) go to busybox's modprobe.
printf '#!/bin/sh\nexec busybox modprobe "$@"\n' >/run/rig/modprobe
chmod +x /run/rig/modprobe
echo /run/rig/modprobe >/proc/sys/kernel/modprobe

# The systemd scenario hands PID 1 over to systemd itself (its checks run as a unit and write
# their own log and status).
[ "$SCENARIO" = systemd ] && source "$REPO/Hardware/rig/scenarios/systemd-boot.sh"

status=0
bash "$REPO/Hardware/rig/scenarios/$SCENARIO.sh" >"$RIG_RESULTS/$SCENARIO${RIG_BOOT:+.$RIG_BOOT}.log" 2>&1 || status=$?
echo "$status" >"$RIG_RESULTS/$SCENARIO${RIG_BOOT:+.$RIG_BOOT}.status"
sync
busybox poweroff -f
