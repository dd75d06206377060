#!/usr/bin/env bash
# make check-arm64: compiles the C shims (Sources/CShims, CAVCodecShims) with Debian's aarch64 cross compiler, so
# its static checks of structure layouts and ioctl request numbers hold for the board's
# architecture, and prints the layouts the Swift side relies on as the board sees them.
set -euo pipefail
cd "$(dirname "$0")/.."
CC=${CC:-aarch64-linux-gnu-gcc}
command -v "$CC" >/dev/null || { echo "error: $CC is missing (make check-arm64 installs gcc-aarch64-linux-gnu)"; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# libav's headers sit in the host's multiarch folder; they are the same for every architecture
# but libavutil's avconfig.h, which is written here for aarch64 (little-endian, fast unaligned access).
host_triplet=$(gcc -dumpmachine)
mkdir -p "$work/include/libavutil"
for header in /usr/include/"$host_triplet"/libavutil/*.h; do
    [ "$(basename "$header")" = avconfig.h ] || ln -s "$header" "$work/include/libavutil/"
done
printf '#ifndef AVUTIL_AVCONFIG_H\n#define AVUTIL_AVCONFIG_H\n#define AV_HAVE_BIGENDIAN 0\n#define AV_HAVE_FAST_UNALIGNED 1\n#endif\n' \
    >"$work/include/libavutil/avconfig.h"
ln -s /usr/include/libv4l2.h /usr/include/libv4l-plugin.h "$work/include/"
# libavformat's and libavcodec's headers (the chapter shim) are the same for every architecture.
ln -s /usr/include/"$host_triplet"/libavformat /usr/include/"$host_triplet"/libavcodec "$work/include/"

flags=(-std=gnu11 -O2 -Wall -Wextra -Werror -Wno-unused-parameter -ISources/CShims/include -I"$work/include")
"$CC" "${flags[@]}" -c Sources/CShims/shims.c -o "$work/shims.o"
file "$work/shims.o" | grep -q 'ARM aarch64' || { echo "error: $CC did not produce an aarch64 object"; exit 1; }
echo "CShims compiles for aarch64 with $($CC -dumpversion): layouts and request numbers as on the host"
# libavcodec's loader (the daemon dlopens libavcodec for MJPEG and the SoC's encoder).
"$CC" "${flags[@]}" -ISources/CAVCodecShims/include -ISources/CDynamicLibrary/include -c Sources/CAVCodecShims/avcodec_loader.c -o "$work/avcodec_loader.o"
"$CC" "${flags[@]}" -ISources/CDynamicLibrary/include -c Sources/CDynamicLibrary/dynamic_library.c -o "$work/dynamic_library.o"
echo "CAVCodecShims and CDynamicLibrary compile for aarch64"

# The layouts, as the board's compiler sees them (read from the object, nothing runs).
cat >"$work/layout.c" <<'C'
#include <linux/videodev2.h>
#include <linux/gpio.h>
#define SIZE(name, value) const unsigned long layout_##name = value;
SIZE(v4l2_buffer, sizeof(struct v4l2_buffer))
SIZE(v4l2_format, sizeof(struct v4l2_format))
SIZE(v4l2_streamparm, sizeof(struct v4l2_streamparm))
SIZE(gpioevent_data, sizeof(struct gpioevent_data))
SIZE(gpioevent_request, sizeof(struct gpioevent_request))
SIZE(VIDIOC_DQBUF, VIDIOC_DQBUF)
SIZE(GPIO_GET_LINEEVENT_IOCTL, GPIO_GET_LINEEVENT_IOCTL)
C
for cc in gcc "$CC"; do
    "$cc" -std=gnu11 -c "$work/layout.c" -o "$work/layout-$cc.o"
    aarch64-linux-gnu-objcopy -O binary -j .rodata "$work/layout-$cc.o" "$work/layout-$cc.bin" 2>/dev/null ||
        objcopy -O binary -j .rodata "$work/layout-$cc.o" "$work/layout-$cc.bin"
done
if cmp -s "$work/layout-gcc.bin" "$work/layout-$CC.bin"; then
    echo "v4l2_buffer, v4l2_format, v4l2_streamparm, gpioevent_data, gpioevent_request and their request numbers: identical on $(gcc -dumpmachine) and aarch64"
else
    echo "error: the layouts differ between the host and aarch64:"
    od -A d -t u8 "$work/layout-gcc.bin"; od -A d -t u8 "$work/layout-$CC.bin"
    exit 1
fi
