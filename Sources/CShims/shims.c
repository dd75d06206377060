#define _GNU_SOURCE
#include "bodycam_shims.h"
#include <stdio.h>
#include <stdarg.h>
#include <string.h>
#include <pthread.h>
#include <libavutil/log.h>
#include <fcntl.h>
#include <libavutil/avutil.h>
#include <libavutil/error.h>
#include <libv4l2.h>
#include <linux/videodev2.h>

int bc_averror(int posix_errno) { return AVERROR(posix_errno); }

static _Thread_local int bc_av_log_problems;
static _Thread_local char bc_av_log_last[160];

static void bc_av_log_callback(void *avcl, int level, const char *format, va_list arguments) {
    if (level <= AV_LOG_WARNING) {
        va_list copy;
        va_copy(copy, arguments);
        vsnprintf(bc_av_log_last, sizeof bc_av_log_last, format, copy);
        va_end(copy);
        bc_av_log_problems++;
    }
    av_log_default_callback(avcl, level, format, arguments);
}

static pthread_once_t bc_av_log_once = PTHREAD_ONCE_INIT;
static void bc_av_log_set(void) { av_log_set_callback(bc_av_log_callback); }
void bc_av_log_install(void) { pthread_once(&bc_av_log_once, bc_av_log_set); }

int bc_av_log_take(char *buffer, size_t size) {
    int count = bc_av_log_problems;
    bc_av_log_problems = 0;
    if (size > 0) {
        snprintf(buffer, size, "%s", count > 0 ? bc_av_log_last : "");
        size_t length = strlen(buffer);
        while (length > 0 && buffer[length - 1] == '\n') buffer[--length] = '\0';
    }
    return count;
}
int bc_averror_eof(void) { return AVERROR_EOF; }
int64_t bc_av_nopts_value(void) { return AV_NOPTS_VALUE; }

void bc_av_strerror(int code, char *buffer, size_t size) {
    if (size == 0) return;
    if (av_strerror(code, buffer, size) < 0) snprintf(buffer, size, "unknown libav error %d", code);
    buffer[size - 1] = '\0';
}

const unsigned long BC_VIDIOC_QUERYCAP = VIDIOC_QUERYCAP;
const unsigned long BC_VIDIOC_ENUM_FMT = VIDIOC_ENUM_FMT;
const unsigned long BC_VIDIOC_ENUM_FRAMESIZES = VIDIOC_ENUM_FRAMESIZES;
const unsigned long BC_VIDIOC_ENUM_FRAMEINTERVALS = VIDIOC_ENUM_FRAMEINTERVALS;
const unsigned long BC_VIDIOC_G_FMT = VIDIOC_G_FMT;
const unsigned long BC_VIDIOC_S_FMT = VIDIOC_S_FMT;
const unsigned long BC_VIDIOC_G_PARM = VIDIOC_G_PARM;
const unsigned long BC_VIDIOC_S_PARM = VIDIOC_S_PARM;
const unsigned long BC_VIDIOC_REQBUFS = VIDIOC_REQBUFS;
const unsigned long BC_VIDIOC_QUERYBUF = VIDIOC_QUERYBUF;
const unsigned long BC_VIDIOC_QBUF = VIDIOC_QBUF;
const unsigned long BC_VIDIOC_DQBUF = VIDIOC_DQBUF;
const unsigned long BC_VIDIOC_STREAMON = VIDIOC_STREAMON;
const unsigned long BC_VIDIOC_STREAMOFF = VIDIOC_STREAMOFF;

// What the Swift side and the simulated driver take for granted, checked by the compiler on every
// build and, with `make check-arm64`, for the board's architecture: an LP64 ABI (request numbers
// fit an unsigned long that Swift passes as UInt), and the V4L2 structures the ioctls carry at the
// sizes their request numbers encode (v4l2_buffer holds a 16-byte struct timeval on 64-bit).
_Static_assert(sizeof(long) == 8 && sizeof(void *) == 8, "an LP64 target");
_Static_assert(sizeof(struct v4l2_capability) == 104, "v4l2_capability");
_Static_assert(sizeof(struct v4l2_fmtdesc) == 64, "v4l2_fmtdesc");
_Static_assert(sizeof(struct v4l2_frmsizeenum) == 44, "v4l2_frmsizeenum");
_Static_assert(sizeof(struct v4l2_format) == 208, "v4l2_format");
_Static_assert(sizeof(struct v4l2_streamparm) == 204, "v4l2_streamparm");
_Static_assert(sizeof(struct v4l2_requestbuffers) == 20, "v4l2_requestbuffers");
_Static_assert(sizeof(struct v4l2_buffer) == 88, "v4l2_buffer");
_Static_assert(__builtin_offsetof(struct v4l2_buffer, timestamp) == 24, "v4l2_buffer.timestamp");
_Static_assert(__builtin_offsetof(struct v4l2_buffer, sequence) == 56, "v4l2_buffer.sequence");
_Static_assert(__builtin_offsetof(struct v4l2_buffer, m) == 64, "v4l2_buffer.m");
_Static_assert(VIDIOC_QUERYCAP == 0x80685600UL, "VIDIOC_QUERYCAP");
_Static_assert(VIDIOC_S_FMT == 0xc0d05605UL, "VIDIOC_S_FMT");
_Static_assert(VIDIOC_S_PARM == 0xc0cc5616UL, "VIDIOC_S_PARM");
_Static_assert(VIDIOC_REQBUFS == 0xc0145608UL, "VIDIOC_REQBUFS");
_Static_assert(VIDIOC_QUERYBUF == 0xc0585609UL, "VIDIOC_QUERYBUF");
_Static_assert(VIDIOC_QBUF == 0xc058560fUL, "VIDIOC_QBUF");
_Static_assert(VIDIOC_DQBUF == 0xc0585611UL, "VIDIOC_DQBUF");
_Static_assert(VIDIOC_STREAMON == 0x40045612UL, "VIDIOC_STREAMON");

int bc_v4l2_open(const char *path, int flags) { return v4l2_open(path, flags); }
int bc_v4l2_ioctl(int fd, unsigned long request, void *arg) { return v4l2_ioctl(fd, request, arg); }

#include <sys/eventfd.h>
#include <pthread.h>

int bc_eventfd(void) { return eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK); }

void bc_set_thread_name(const char *name) {
    char truncated[16];
    snprintf(truncated, sizeof truncated, "%s", name);
    pthread_setname_np(pthread_self(), truncated);
}

#include <sys/timex.h>

int bc_clock_sync_state(long *estimated_error_us) {
    struct timex tx = {0};
    int state = adjtimex(&tx);
    if (estimated_error_us) *estimated_error_us = tx.esterror;
    if (state < 0 || state == TIME_ERROR || (tx.status & STA_UNSYNC)) return 0;
    return 1;
}

#include <sys/socket.h>

int bc_accept_nonblocking(int fd) { return accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK); }

int bc_peer_credentials(int fd, int *pid, unsigned int *uid, unsigned int *gid) {
    struct ucred credentials;
    socklen_t length = sizeof credentials;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &length) < 0) return -1;
    *pid = credentials.pid;
    *uid = credentials.uid;
    *gid = credentials.gid;
    return 0;
}

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <errno.h>

// ioprio_set(2) has no glibc wrapper; these are the kernel's values (include/uapi/linux/ioprio.h).
#define BC_IOPRIO_WHO_PROCESS 1
#define BC_IOPRIO_CLASS_IDLE 3
#define BC_IOPRIO_CLASS_SHIFT 13

int bc_lower_thread_priority(int nice_value) {
    pid_t tid = (pid_t)syscall(SYS_gettid);
    if (setpriority(PRIO_PROCESS, (id_t)tid, nice_value) != 0) return errno;
    if (syscall(SYS_ioprio_set, BC_IOPRIO_WHO_PROCESS, tid, BC_IOPRIO_CLASS_IDLE << BC_IOPRIO_CLASS_SHIFT) != 0) return errno;
    return 0;
}
