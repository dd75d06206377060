#include "bodycam_avformat.h"
#include <libavformat/avformat.h>
#include <libavutil/mem.h>
#include <libavutil/dict.h>

int bc_av_add_chapter(void *format_context, int64_t id, int num, int den, int64_t start, int64_t end, const char *title) {
    AVFormatContext *s = format_context;
    AVChapter *chapter = av_mallocz(sizeof(AVChapter));
    if (!chapter) return AVERROR(ENOMEM);
    chapter->id = id;
    chapter->time_base = (AVRational){num, den};
    chapter->start = start;
    chapter->end = end;
    if (title && av_dict_set(&chapter->metadata, "title", title, 0) < 0) {
        av_free(chapter);
        return AVERROR(ENOMEM);
    }
    // nb_chapters is unsigned int; av_dynarray_add_nofree takes int *.
    int count = (int)s->nb_chapters;
    int status = av_dynarray_add_nofree(&s->chapters, &count, chapter);
    if (status < 0) {
        av_dict_free(&chapter->metadata);
        av_free(chapter);
        return status;
    }
    s->nb_chapters = (unsigned int)count;
    return 0;
}
