#include "bodycam_avcodec.h"
#include "bodycam_dl.h"
#include <stdio.h>

// The soname of the libavcodec these headers describe (libavcodec.so.59 for FFmpeg 5.1): a
// library of another major version has another ABI and must not be taken.
#define BC_STRINGIFY_(x) #x
#define BC_STRINGIFY(x) BC_STRINGIFY_(x)
#define BC_AVCODEC_SONAME "libavcodec.so." BC_STRINGIFY(LIBAVCODEC_VERSION_MAJOR)

static struct {
    const AVCodec *(*find_encoder_by_name)(const char *);
    const AVCodec *(*find_decoder_by_name)(const char *);
    AVCodecContext *(*alloc_context3)(const AVCodec *);
    void (*free_context)(AVCodecContext **);
    int (*open2)(AVCodecContext *, const AVCodec *, AVDictionary **);
    int (*send_frame)(AVCodecContext *, const AVFrame *);
    int (*receive_packet)(AVCodecContext *, AVPacket *);
    int (*send_packet)(AVCodecContext *, const AVPacket *);
    int (*receive_frame)(AVCodecContext *, AVFrame *);
    const char *(*get_name)(enum AVCodecID);
    AVCodecParameters *(*parameters_alloc)(void);
    void (*parameters_free)(AVCodecParameters **);
    int (*parameters_from_context)(AVCodecParameters *, const AVCodecContext *);
    AVPacket *(*packet_alloc)(void);
    void (*packet_free)(AVPacket **);
    void (*packet_unref)(AVPacket *);
    int (*new_packet)(AVPacket *, int);
} avcodec;

static bc_dl_once loaded = BC_DL_ONCE_INIT;

// The release calls do nothing when the library never loaded (nothing of it can have been
// allocated then), so a deinit after a failed load is safe; every other call needs a load that
// returned 0.
int bc_avcodec_load(char *error, size_t size) {
    const bc_dl_symbol symbols[] = {
        {"avcodec_find_encoder_by_name", (void **)&avcodec.find_encoder_by_name},
        {"avcodec_find_decoder_by_name", (void **)&avcodec.find_decoder_by_name},
        {"avcodec_alloc_context3", (void **)&avcodec.alloc_context3},
        {"avcodec_free_context", (void **)&avcodec.free_context},
        {"avcodec_open2", (void **)&avcodec.open2},
        {"avcodec_send_frame", (void **)&avcodec.send_frame},
        {"avcodec_receive_packet", (void **)&avcodec.receive_packet},
        {"avcodec_send_packet", (void **)&avcodec.send_packet},
        {"avcodec_receive_frame", (void **)&avcodec.receive_frame},
        {"avcodec_get_name", (void **)&avcodec.get_name},
        {"avcodec_parameters_alloc", (void **)&avcodec.parameters_alloc},
        {"avcodec_parameters_free", (void **)&avcodec.parameters_free},
        {"avcodec_parameters_from_context", (void **)&avcodec.parameters_from_context},
        {"av_packet_alloc", (void **)&avcodec.packet_alloc},
        {"av_packet_free", (void **)&avcodec.packet_free},
        {"av_packet_unref", (void **)&avcodec.packet_unref},
        {"av_new_packet", (void **)&avcodec.new_packet},
    };
    return bc_dl_open_once(&loaded, BC_AVCODEC_SONAME, symbols, sizeof symbols / sizeof symbols[0], error, size);
}

const AVCodec *bc_avcodec_find_encoder_by_name(const char *name) { return avcodec.find_encoder_by_name(name); }
const AVCodec *bc_avcodec_find_decoder_by_name(const char *name) { return avcodec.find_decoder_by_name(name); }
AVCodecContext *bc_avcodec_alloc_context3(const AVCodec *codec) { return avcodec.alloc_context3(codec); }
void bc_avcodec_free_context(AVCodecContext **context) { if (avcodec.free_context) avcodec.free_context(context); }
int bc_avcodec_open2(AVCodecContext *context, const AVCodec *codec, AVDictionary **options) { return avcodec.open2(context, codec, options); }
int bc_avcodec_send_frame(AVCodecContext *context, const AVFrame *frame) { return avcodec.send_frame(context, frame); }
int bc_avcodec_receive_packet(AVCodecContext *context, AVPacket *packet) { return avcodec.receive_packet(context, packet); }
int bc_avcodec_send_packet(AVCodecContext *context, const AVPacket *packet) { return avcodec.send_packet(context, packet); }
int bc_avcodec_receive_frame(AVCodecContext *context, AVFrame *frame) { return avcodec.receive_frame(context, frame); }
const char *bc_avcodec_get_name(enum AVCodecID id) { return avcodec.get_name(id); }
AVCodecParameters *bc_avcodec_parameters_alloc(void) { return avcodec.parameters_alloc(); }
void bc_avcodec_parameters_free(AVCodecParameters **parameters) { if (avcodec.parameters_free) avcodec.parameters_free(parameters); }
int bc_avcodec_parameters_from_context(AVCodecParameters *parameters, const AVCodecContext *context) { return avcodec.parameters_from_context(parameters, context); }
AVPacket *bc_av_packet_alloc(void) { return avcodec.packet_alloc(); }
void bc_av_packet_free(AVPacket **packet) { if (avcodec.packet_free) avcodec.packet_free(packet); }
void bc_av_packet_unref(AVPacket *packet) { if (avcodec.packet_unref) avcodec.packet_unref(packet); }
int bc_av_new_packet(AVPacket *packet, int size) { return avcodec.new_packet(packet, size); }
