// What Swift cannot import directly: function-like macros (AVERROR, the _IOWR ioctl request
// numbers, AV_NOPTS_VALUE) and variadic C functions (v4l2_open, v4l2_ioctl).
// This header includes no library header, so every library type stays owned by its own module
// (CAVUtil, CV4L2, …) and Swift sees each declaration once.
#pragma once
#include <stdint.h>
#include <stddef.h>

// MARK: libav

/// AVERROR(posix_errno)
int bc_averror(int posix_errno);
/// AVERROR_EOF
int bc_averror_eof(void);
/// AV_NOPTS_VALUE
int64_t bc_av_nopts_value(void);
/// av_strerror into a caller-supplied buffer; always NUL-terminates.
void bc_av_strerror(int code, char *buffer, size_t size);
/// Installs (once) a log callback that counts, per thread, libav's messages at warning level or
/// worse, keeps the last one's text, and passes every message on to libav's default callback (a
/// va_list callback: Swift cannot write one). libavcodec reports damage it conceals only there.
void bc_av_log_install(void);
/// The calling thread's count since the last call, reset to 0; its last message into `buffer`
/// (NUL-terminated, empty when none).
int bc_av_log_take(char *buffer, size_t size);

// MARK: V4L2 request numbers (they are _IOWR(...) macros)

extern const unsigned long BC_VIDIOC_QUERYCAP;
extern const unsigned long BC_VIDIOC_ENUM_FMT;
extern const unsigned long BC_VIDIOC_ENUM_FRAMESIZES;
extern const unsigned long BC_VIDIOC_ENUM_FRAMEINTERVALS;
extern const unsigned long BC_VIDIOC_G_FMT;
extern const unsigned long BC_VIDIOC_S_FMT;
extern const unsigned long BC_VIDIOC_G_PARM;
extern const unsigned long BC_VIDIOC_S_PARM;
extern const unsigned long BC_VIDIOC_REQBUFS;
extern const unsigned long BC_VIDIOC_QUERYBUF;
extern const unsigned long BC_VIDIOC_QBUF;
extern const unsigned long BC_VIDIOC_DQBUF;
extern const unsigned long BC_VIDIOC_STREAMON;
extern const unsigned long BC_VIDIOC_STREAMOFF;

// MARK: libv4l2 (variadic in its header)

/// v4l2_open(path, flags): libv4l2's open, which adds format conversion for odd cameras.
int bc_v4l2_open(const char *path, int flags);
/// v4l2_ioctl(fd, request, arg). Returns -1 with errno set on failure; EINTR is the caller's to retry.
int bc_v4l2_ioctl(int fd, unsigned long request, void *arg);

// MARK: Linux calls Swift's Glibc module leaves out

/// eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)
int bc_eventfd(void);
// The calling thread only: CPU nice value `nice_value` and the idle I/O class (ioprio_set(2)), so
// that its work never delays the recording. 0, or the errno of the call that failed.
int bc_lower_thread_priority(int nice_value);
/// pthread_setname_np(pthread_self(), name): the name shows in top -H and core dumps.
void bc_set_thread_name(const char *name);

/// adjtimex(2) read-only: 1 when the kernel says the clock is synchronised (no STA_UNSYNC and
/// not TIME_ERROR), 0 otherwise; `estimated_error_us` gets the kernel's error estimate.
int bc_clock_sync_state(long *estimated_error_us);

/// accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK): a connection that never blocks a reader.
int bc_accept_nonblocking(int fd);
/// SO_PEERCRED of a connected Unix socket; returns 0 or -1 with errno.
int bc_peer_credentials(int fd, int *pid, unsigned int *uid, unsigned int *gid);

/// libFuzzer's driver (compiler-rt, fuzzer/FuzzerInterface.h), declared for bodycam-fuzz's
/// fuzzing build only: it exists when linking with -sanitize=fuzzer, and nothing else calls it.
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const unsigned char *data, unsigned long size));

