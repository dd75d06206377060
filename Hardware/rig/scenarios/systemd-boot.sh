# Sourced by guest.sh (PID 1) for the systemd scenario: installs the project as a package would
# (`make install`: the unit, its drop-ins, sysusers and tmpfiles, udev rules) into the guest's
# overlay root, writes the device configuration, keys and a unit that runs the checks
# (scenarios/systemd.sh), then execs systemd as PID 1. No camera yet: the checks load vivid.
# systemd mounts a tmpfs on /run: the results share and the module helper move out of it first.
mkdir -p /rig-results
mount --bind "$RIG_RESULTS" /rig-results
export RIG_RESULTS=/rig-results
cp /run/rig/modprobe /usr/local/sbin/rig-modprobe && echo /usr/local/sbin/rig-modprobe >/proc/sys/kernel/modprobe
LOG="$RIG_RESULTS/systemd.0.log"
{
    set -e
    make -s -C "$REPO" install BIN="$RIG_BIN" PREFIX=/usr DESTDIR= >/dev/null
    # Keys made as an office would (lib.sh's provision) into the daemon's own state folder.
    export WORK=/var/lib/bodycam-rig
    source "$REPO/Hardware/rig/lib.sh"
    KEYS=/var/lib/bodycam/keys
    provision
    # The daemon's user (sysusers.d, as at boot) owns its state, keys included.
    systemd-sysusers >/dev/null
    chown -R bodycam:bodycam /var/lib/bodycam
    mkdir -p /etc/bodycam/supervisors
    cp "$KEYS/supervisors/"*.pub /etc/bodycam/supervisors/
    SOCKET=/run/bodycam/control.sock
    write_config /etc/bodycam/bodycam.toml /var/lib/bodycam/store '
[controls]
backend = "simulated"'
    sed -i 's/^width = .*/width = 640/; s/^height = .*/height = 360/; s|^supervisors = .*|supervisors = "/etc/bodycam/supervisors"|' /etc/bodycam/bodycam.toml
    # The board profile names GPIO lines; the simulated controls need none.
    sed -i '/^board_profile/d' /etc/bodycam/bodycam.toml
    set | grep -E '^RIG_[A-Z_]+=' >/etc/rig.env
    cat >/etc/systemd/system/rig-checks.service <<UNIT
[Unit]
Description=bodycam rig: the systemd scenario's checks
After=bodycamd.service
[Service]
Type=oneshot
EnvironmentFile=/etc/rig.env
ExecStart=/bin/bash $REPO/Hardware/rig/scenarios/systemd.sh
StandardOutput=append:$LOG
StandardError=append:$LOG
UNIT
    # The guest's /tmp and /var/tmp are the host's under the overlay (the project itself may be
    # there): systemd-tmpfiles' `D /tmp` would empty them at boot, file by file over 9p (minutes
    # under emulation). A board's /tmp is empty at boot anyway.
    mkdir -p /etc/systemd/system/systemd-tmpfiles-setup.service.d
    cat >/etc/systemd/system/systemd-tmpfiles-setup.service.d/rig.conf <<UNIT
[Service]
ExecStart=
ExecStart=systemd-tmpfiles --create --remove --boot --exclude-prefix=/dev --exclude-prefix=/tmp --exclude-prefix=/var/tmp
UNIT
    mkdir -p /etc/systemd/system/multi-user.target.wants /etc/systemd/system/basic.target.wants
    ln -sf /etc/systemd/system/rig-checks.service /etc/systemd/system/multi-user.target.wants/
    ln -sf /usr/lib/systemd/system/bodycamd.service /etc/systemd/system/basic.target.wants/
    ln -sf /lib/systemd/system/multi-user.target /etc/systemd/system/default.target
    # What modules-load.d/bodycam.conf asks for at boot. The rig's module index is busybox's
    # (modules.dep only), which systemd-modules-load (libkmod) cannot read, so the rig loads it.
    busybox modprobe videodev
    echo "systemd-boot: installed; handing PID 1 to systemd"
} >>"$LOG" 2>&1 || { echo 1 >"$RIG_RESULTS/systemd.0.status"; sync; busybox poweroff -f; }
umount /proc/sys/fs/binfmt_misc 2>/dev/null || true
exec /lib/systemd/systemd --log-target=console --log-level=notice
