#pragma once
// x264.h uses the fixed-width integer types without including their header.
#include <stdint.h>
#include <x264.h>

// x264_encoder_open is a macro naming the ABI-versioned symbol (x264_encoder_open_164), which
// Swift cannot call through; this names it once, for the x264 the build found.
static inline x264_t *bc_x264_encoder_open(x264_param_t *param) { return x264_encoder_open(param); }
