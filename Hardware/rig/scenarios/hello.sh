uname -r; cat /proc/cpuinfo | grep -c processor; ls /dev | head -30; modprobe vivid && ls /dev/video*; modprobe gpio-sim && ls /sys/kernel/config 2>&1 ; mount | head -20
