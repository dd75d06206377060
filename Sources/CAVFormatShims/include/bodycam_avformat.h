#pragma once
// What Swift cannot do with libavformat: its chapter list has no public call. Kept apart from
// CShims so that only what reads or writes with libavformat links it (the daemon does not).
#include <stdint.h>

/// Adds a chapter to an output AVFormatContext (given as `void *`: this header includes no
/// library header): id, start and end in `num`/`den` seconds, and a title. libavformat has no
/// public call for this (avpriv_new_chapter is private); avformat_free_context frees it.
/// Returns 0 or an AVERROR code.
int bc_av_add_chapter(void *format_context, int64_t id, int num, int den, int64_t start, int64_t end, const char *title);
