#include "bodycam_avcodec.h"
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

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

static const struct { const char *name; size_t offset; } symbols[] = {
    {"avcodec_find_encoder_by_name", offsetof(__typeof__(avcodec), find_encoder_by_name)},
    {"avcodec_find_decoder_by_name", offsetof(__typeof__(avcodec), find_decoder_by_name)},
    {"avcodec_alloc_context3", offsetof(__typeof__(avcodec), alloc_context3)},
    {"avcodec_free_context", offsetof(__typeof__(avcodec), free_context)},
    {"avcodec_open2", offsetof(__typeof__(avcodec), open2)},
    {"avcodec_send_frame", offsetof(__typeof__(avcodec), send_frame)},
    {"avcodec_receive_packet", offsetof(__typeof__(avcodec), receive_packet)},
    {"avcodec_send_packet", offsetof(__typeof__(avcodec), send_packet)},
    {"avcodec_receive_frame", offsetof(__typeof__(avcodec), receive_frame)},
    {"avcodec_get_name", offsetof(__typeof__(avcodec), get_name)},
    {"avcodec_parameters_alloc", offsetof(__typeof__(avcodec), parameters_alloc)},
    {"avcodec_parameters_free", offsetof(__typeof__(avcodec), parameters_free)},
    {"avcodec_parameters_from_context", offsetof(__typeof__(avcodec), parameters_from_context)},
    {"av_packet_alloc", offsetof(__typeof__(avcodec), packet_alloc)},
    {"av_packet_free", offsetof(__typeof__(avcodec), packet_free)},
    {"av_packet_unref", offsetof(__typeof__(avcodec), packet_unref)},
    {"av_new_packet", offsetof(__typeof__(avcodec), new_packet)},
};

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static char load_error[256];
static int load_status = -1;

static void load(void) {
    // RTLD_LOCAL: its symbols serve only these calls; it stays loaded for the process's life.
    void *library = dlopen(BC_AVCODEC_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (!library) {
        const char *reason = dlerror();
        snprintf(load_error, sizeof load_error, "%s", reason ? reason : BC_AVCODEC_SONAME " could not be loaded");
        return;
    }
    for (size_t index = 0; index < sizeof symbols / sizeof symbols[0]; index++) {
        void *address = dlsym(library, symbols[index].name);
        if (!address) {
            snprintf(load_error, sizeof load_error, "%s has no %s", BC_AVCODEC_SONAME, symbols[index].name);
            memset(&avcodec, 0, sizeof avcodec);
            dlclose(library);
            return;
        }
        memcpy((char *)&avcodec + symbols[index].offset, &address, sizeof address);
    }
    load_status = 0;
}

int bc_avcodec_load(char *error, size_t size) {
    pthread_once(&load_once, load);
    if (load_status != 0 && error && size > 0) snprintf(error, size, "%s", load_error);
    return load_status;
}

const AVCodec *bc_avcodec_find_encoder_by_name(const char *name) { return avcodec.find_encoder_by_name(name); }
const AVCodec *bc_avcodec_find_decoder_by_name(const char *name) { return avcodec.find_decoder_by_name(name); }
AVCodecContext *bc_avcodec_alloc_context3(const AVCodec *codec) { return avcodec.alloc_context3(codec); }
void bc_avcodec_free_context(AVCodecContext **context) { avcodec.free_context(context); }
int bc_avcodec_open2(AVCodecContext *context, const AVCodec *codec, AVDictionary **options) { return avcodec.open2(context, codec, options); }
int bc_avcodec_send_frame(AVCodecContext *context, const AVFrame *frame) { return avcodec.send_frame(context, frame); }
int bc_avcodec_receive_packet(AVCodecContext *context, AVPacket *packet) { return avcodec.receive_packet(context, packet); }
int bc_avcodec_send_packet(AVCodecContext *context, const AVPacket *packet) { return avcodec.send_packet(context, packet); }
int bc_avcodec_receive_frame(AVCodecContext *context, AVFrame *frame) { return avcodec.receive_frame(context, frame); }
const char *bc_avcodec_get_name(enum AVCodecID id) { return avcodec.get_name(id); }
AVCodecParameters *bc_avcodec_parameters_alloc(void) { return avcodec.parameters_alloc(); }
void bc_avcodec_parameters_free(AVCodecParameters **parameters) { avcodec.parameters_free(parameters); }
int bc_avcodec_parameters_from_context(AVCodecParameters *parameters, const AVCodecContext *context) { return avcodec.parameters_from_context(parameters, context); }
AVPacket *bc_av_packet_alloc(void) { return avcodec.packet_alloc(); }
void bc_av_packet_free(AVPacket **packet) { avcodec.packet_free(packet); }
void bc_av_packet_unref(AVPacket *packet) { avcodec.packet_unref(packet); }
int bc_av_new_packet(AVPacket *packet, int size) { return avcodec.new_packet(packet, size); }
