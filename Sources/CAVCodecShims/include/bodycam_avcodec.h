#pragma once
// libavcodec, loaded when first needed (a USB camera's MJPEG, the SoC's h264_v4l2m2m encoder)
// instead of linked: the recording path encodes with libx264 itself, and libavcodec's Debian
// build brings some 90 libraries into the process. The same calls as libavcodec's, prefixed
// bc_; each needs bc_avcodec_load to have returned 0 first.
#include <stddef.h>
#include <libavcodec/avcodec.h>

/// Loads libavcodec of the major version these headers are (once per process); 0 on success,
/// else -1 with the reason (dlerror's, or the symbol it lacks) in `error`.
int bc_avcodec_load(char *error, size_t size);

const AVCodec *bc_avcodec_find_encoder_by_name(const char *name);
const AVCodec *bc_avcodec_find_decoder_by_name(const char *name);
AVCodecContext *bc_avcodec_alloc_context3(const AVCodec *codec);
void bc_avcodec_free_context(AVCodecContext **context);
int bc_avcodec_open2(AVCodecContext *context, const AVCodec *codec, AVDictionary **options);
int bc_avcodec_send_frame(AVCodecContext *context, const AVFrame *frame);
int bc_avcodec_receive_packet(AVCodecContext *context, AVPacket *packet);
int bc_avcodec_send_packet(AVCodecContext *context, const AVPacket *packet);
int bc_avcodec_receive_frame(AVCodecContext *context, AVFrame *frame);
const char *bc_avcodec_get_name(enum AVCodecID id);
AVCodecParameters *bc_avcodec_parameters_alloc(void);
void bc_avcodec_parameters_free(AVCodecParameters **parameters);
int bc_avcodec_parameters_from_context(AVCodecParameters *parameters, const AVCodecContext *context);
AVPacket *bc_av_packet_alloc(void);
void bc_av_packet_free(AVPacket **packet);
void bc_av_packet_unref(AVPacket *packet);
int bc_av_new_packet(AVPacket *packet, int size);
