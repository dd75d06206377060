#pragma once
#include <stddef.h>
#include <curl/curl.h>

// libcurl is loaded when the uplink first needs it (dlopen of libcurl.so.4), not linked: the
// daemon records without an office link on most boards, and linking it loads 25 more shared
// libraries (HTTP/2, SSH, LDAP, Kerberos, RTMP, IDN, PSL, …), about 4 MiB resident, at every
// start. systemd does the same for its optional libraries (dlopen on first use).

/// Loads libcurl.so.4 and resolves the calls below, once (later calls return the first
/// result). Returns 0, or -1 with the reason (dlerror's text) in `error` (NUL-terminated,
/// cut to `size`). Safe from any thread. A failure holds until the process restarts (libcurl
/// installed later is loaded by the next start).
int bc_curl_load(char *error, size_t size);

// The calls of libcurl the uplink makes, through the loaded library. Call bc_curl_load first
// and only when it returned 0.
CURLcode bc_curl_global_init(long flags);
CURL *bc_curl_easy_init(void);
void bc_curl_easy_cleanup(CURL *handle);
CURLcode bc_curl_easy_perform(CURL *handle);
const char *bc_curl_easy_strerror(CURLcode code);
struct curl_slist *bc_curl_slist_append(struct curl_slist *list, const char *string);
void bc_curl_slist_free_all(struct curl_slist *list);

// curl_easy_setopt and curl_easy_getinfo are variadic: Swift calls these typed forms instead.
CURLcode bc_curl_set_long(CURL *handle, CURLoption option, long value);
CURLcode bc_curl_set_offset(CURL *handle, CURLoption option, curl_off_t value);
CURLcode bc_curl_set_pointer(CURL *handle, CURLoption option, const void *value);
CURLcode bc_curl_set_write_function(CURL *handle, size_t (*function)(char *, size_t, size_t, void *));
CURLcode bc_curl_set_header_function(CURL *handle, size_t (*function)(char *, size_t, size_t, void *));
CURLcode bc_curl_get_long(CURL *handle, CURLINFO info, long *value);
CURLcode bc_curl_get_double(CURL *handle, CURLINFO info, double *value);
