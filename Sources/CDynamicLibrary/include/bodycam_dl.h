#pragma once
#include <pthread.h>
#include <stddef.h>

// Optional libraries loaded on first use (dlopen), not linked, the way systemd loads its own:
// libcurl for the uplink, libavcodec for an MJPEG camera or the SoC's encoder. One loader for
// both, so its failures are tested once (Tests/LibAVTests/DynamicLibraryTests.swift).

/// A function the caller needs from the library, and where its address goes.
typedef struct {
    const char *name;
    void **slot;
} bc_dl_symbol;

/// Opens `soname` (RTLD_NOW | RTLD_LOCAL: its symbols serve only these slots; it stays loaded
/// for the process's life) and resolves every symbol into its slot. Returns 0, or -1 with the
/// reason in `error` (dlerror's text, or "SONAME has no NAME"; NUL-terminated, cut to `size`),
/// every slot set to NULL and the library closed again.
int bc_dl_open(const char *soname, const bc_dl_symbol *symbols, size_t count, char *error, size_t size);

/// One library's single load for the process: the first bc_dl_open_once tries it, later calls
/// give that first outcome. Define it static, with BC_DL_ONCE_INIT.
typedef struct {
    pthread_mutex_t lock;
    int tried;
    int status;
    char error[256];
} bc_dl_once;
#define BC_DL_ONCE_INIT { PTHREAD_MUTEX_INITIALIZER, 0, -1, "" }

/// bc_dl_open, once per `once` (safe from any thread): 0, or -1 with the first attempt's reason
/// in `error`. A failure holds until the process restarts (a library installed later is loaded
/// by the next start).
int bc_dl_open_once(bc_dl_once *once, const char *soname, const bc_dl_symbol *symbols, size_t count, char *error, size_t size);
