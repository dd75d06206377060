#ifndef BODYCAM_TOML_H
#define BODYCAM_TOML_H

// A C view of toml++'s parser (https://marzer.github.io/tomlplusplus/), which is C++: the
// configuration module reads TOML 1.0 through these two calls. The shim parses, walks the
// document and hands each setting to a callback with its line; it keeps nothing.

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
#define BC_TOML_NOEXCEPT noexcept
extern "C" {
#else
#define BC_TOML_NOEXCEPT
#endif

typedef enum {
    BC_TOML_STRING,
    BC_TOML_INTEGER,
    BC_TOML_BOOLEAN,
    BC_TOML_FLOAT,
    BC_TOML_DATE_TIME,
    /// An array whose items are all strings (`strings`, `count`).
    BC_TOML_STRINGS,
    /// Any other array (of numbers, of tables, mixed).
    BC_TOML_OTHER_ARRAY,
} bc_toml_kind;

/// One setting: a value that is not a table, named by its path of keys (["camera", "fps"]).
/// Keys and strings come with their lengths (TOML allows U+0000 in them). The pointers are valid
/// only during the callback.
typedef struct {
    const char *const *keys;     // the path, outermost first
    const size_t *key_lengths;
    size_t depth;
    bc_toml_kind kind;
    const char *text;            // BC_TOML_STRING
    size_t text_length;          // BC_TOML_STRING
    int64_t integer;             // BC_TOML_INTEGER
    int boolean;                 // BC_TOML_BOOLEAN
    const char *const *strings;  // BC_TOML_STRINGS
    const size_t *string_lengths;
    size_t count;                // BC_TOML_STRINGS
    uint32_t line;               // where the value begins, 1-based
} bc_toml_setting;

typedef void (*bc_toml_visit)(void *context, const bc_toml_setting *setting);

/// Parses `length` bytes of TOML 1.0. On success calls `visit` once per setting and returns 0.
/// On a syntax error (a duplicate key among them) writes toml++'s message into `error`
/// (NUL-terminated, cut to `error_size`), its line into `error_line` and returns -1; on any
/// other failure (no memory) the same with line 0. No C++ exception leaves this function.
int bc_toml_parse(const char *text, size_t length, bc_toml_visit visit, void *context,
                  char *error, size_t error_size, uint32_t *error_line) BC_TOML_NOEXCEPT;

#ifdef __cplusplus
}
#endif

#endif
