#include "bodycam_curl.h"
#include "bodycam_dl.h"
#include <stdio.h>

// The soname of libcurl's ABI since 7.16 (Debian's libcurl4).
#define BC_CURL_SONAME "libcurl.so.4"

static struct {
    CURLcode (*global_init)(long);
    CURL *(*easy_init)(void);
    void (*easy_cleanup)(CURL *);
    CURLcode (*easy_perform)(CURL *);
    const char *(*easy_strerror)(CURLcode);
    struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
    void (*slist_free_all)(struct curl_slist *);
    CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
    CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
} curl;

static bc_dl_once loaded = BC_DL_ONCE_INIT;

int bc_curl_load(char *error, size_t size) {
    const bc_dl_symbol symbols[] = {
        {"curl_global_init", (void **)&curl.global_init}, {"curl_easy_init", (void **)&curl.easy_init},
        {"curl_easy_cleanup", (void **)&curl.easy_cleanup}, {"curl_easy_perform", (void **)&curl.easy_perform},
        {"curl_easy_strerror", (void **)&curl.easy_strerror}, {"curl_slist_append", (void **)&curl.slist_append},
        {"curl_slist_free_all", (void **)&curl.slist_free_all}, {"curl_easy_setopt", (void **)&curl.easy_setopt},
        {"curl_easy_getinfo", (void **)&curl.easy_getinfo},
    };
    return bc_dl_open_once(&loaded, BC_CURL_SONAME, symbols, sizeof symbols / sizeof symbols[0], error, size);
}

CURLcode bc_curl_global_init(long flags) { return curl.global_init(flags); }
CURL *bc_curl_easy_init(void) { return curl.easy_init(); }
void bc_curl_easy_cleanup(CURL *handle) { curl.easy_cleanup(handle); }
CURLcode bc_curl_easy_perform(CURL *handle) { return curl.easy_perform(handle); }
const char *bc_curl_easy_strerror(CURLcode code) { return curl.easy_strerror(code); }
struct curl_slist *bc_curl_slist_append(struct curl_slist *list, const char *string) { return curl.slist_append(list, string); }
void bc_curl_slist_free_all(struct curl_slist *list) { curl.slist_free_all(list); }

CURLcode bc_curl_set_long(CURL *handle, CURLoption option, long value) { return curl.easy_setopt(handle, option, value); }
CURLcode bc_curl_set_offset(CURL *handle, CURLoption option, curl_off_t value) { return curl.easy_setopt(handle, option, value); }
CURLcode bc_curl_set_pointer(CURL *handle, CURLoption option, const void *value) { return curl.easy_setopt(handle, option, value); }
CURLcode bc_curl_set_write_function(CURL *handle, size_t (*function)(char *, size_t, size_t, void *)) {
    return curl.easy_setopt(handle, CURLOPT_WRITEFUNCTION, function);
}
CURLcode bc_curl_set_header_function(CURL *handle, size_t (*function)(char *, size_t, size_t, void *)) {
    return curl.easy_setopt(handle, CURLOPT_HEADERFUNCTION, function);
}
CURLcode bc_curl_get_long(CURL *handle, CURLINFO info, long *value) { return curl.easy_getinfo(handle, info, value); }
CURLcode bc_curl_get_double(CURL *handle, CURLINFO info, double *value) { return curl.easy_getinfo(handle, info, value); }
