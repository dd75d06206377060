#include "bodycam_dl.h"
#include <dlfcn.h>
#include <stdio.h>

int bc_dl_open(const char *soname, const bc_dl_symbol *symbols, size_t count, char *error, size_t size) {
    void *library = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
    if (!library) {
        const char *reason = dlerror();
        if (error && size > 0) snprintf(error, size, "%s", reason ? reason : "dlopen failed");
        return -1;
    }
    for (size_t index = 0; index < count; index++) {
        void *address = dlsym(library, symbols[index].name);
        if (!address) {
            if (error && size > 0) snprintf(error, size, "%s has no %s", soname, symbols[index].name);
            for (size_t cleared = 0; cleared < count; cleared++) *symbols[cleared].slot = NULL;
            dlclose(library);
            return -1;
        }
        *symbols[index].slot = address;
    }
    return 0;
}

int bc_dl_open_once(bc_dl_once *once, const char *soname, const bc_dl_symbol *symbols, size_t count, char *error, size_t size) {
    pthread_mutex_lock(&once->lock);
    if (!once->tried) {
        once->status = bc_dl_open(soname, symbols, count, once->error, sizeof once->error);
        once->tried = 1;
    }
    int status = once->status;
    if (status != 0 && error && size > 0) snprintf(error, size, "%s", once->error);
    pthread_mutex_unlock(&once->lock);
    return status;
}
