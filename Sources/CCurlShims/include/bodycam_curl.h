#pragma once
#include <curl/curl.h>

// curl_easy_setopt and curl_easy_getinfo are variadic: Swift calls these typed forms instead.
CURLcode bc_curl_set_long(CURL *handle, CURLoption option, long value);
CURLcode bc_curl_set_offset(CURL *handle, CURLoption option, curl_off_t value);
CURLcode bc_curl_set_pointer(CURL *handle, CURLoption option, const void *value);
CURLcode bc_curl_set_write_function(CURL *handle, size_t (*function)(char *, size_t, size_t, void *));
CURLcode bc_curl_set_header_function(CURL *handle, size_t (*function)(char *, size_t, size_t, void *));
CURLcode bc_curl_get_long(CURL *handle, CURLINFO info, long *value);
CURLcode bc_curl_get_double(CURL *handle, CURLINFO info, double *value);
