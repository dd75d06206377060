// The C view of toml++ declared in bodycam_toml.h. Hand-written only because Swift cannot call
// toml++'s C++ API without C++ interoperability spreading to every module that imports it.
#include "bodycam_toml.h"

#include <toml++/toml.h>

#include <cstring>
#include <exception>
#include <string>
#include <string_view>
#include <vector>

namespace {

struct Walker {
    bc_toml_visit visit;
    void *context;
    std::vector<const char *> keys;
    std::vector<size_t> key_lengths;

    void report(const toml::node &node) {
        bc_toml_setting setting{};
        setting.keys = keys.data();
        setting.key_lengths = key_lengths.data();
        setting.depth = keys.size();
        setting.line = node.source().begin.line;
        std::vector<const char *> strings;
        std::vector<size_t> lengths;
        if (auto value = node.as_string()) {
            setting.kind = BC_TOML_STRING;
            setting.text = value->get().data();
            setting.text_length = value->get().size();
        } else if (auto value = node.as_integer()) {
            setting.kind = BC_TOML_INTEGER;
            setting.integer = value->get();
        } else if (auto value = node.as_boolean()) {
            setting.kind = BC_TOML_BOOLEAN;
            setting.boolean = value->get() ? 1 : 0;
        } else if (node.is_floating_point()) {
            setting.kind = BC_TOML_FLOAT;
        } else if (node.is_date() || node.is_time() || node.is_date_time()) {
            setting.kind = BC_TOML_DATE_TIME;
        } else if (auto array = node.as_array()) {
            setting.kind = BC_TOML_STRINGS;
            for (const auto &item : *array) {
                auto text = item.as_string();
                if (!text) {
                    setting.kind = BC_TOML_OTHER_ARRAY;
                    strings.clear();
                    lengths.clear();
                    break;
                }
                strings.push_back(text->get().data());
                lengths.push_back(text->get().size());
            }
            setting.strings = strings.data();
            setting.string_lengths = lengths.data();
            setting.count = strings.size();
        } else {
            setting.kind = BC_TOML_OTHER_ARRAY;
        }
        visit(context, &setting);
    }

    void walk(const toml::table &table) {
        for (const auto &[key, node] : table) {
            keys.push_back(key.str().data());
            key_lengths.push_back(key.str().size());
            if (auto inner = node.as_table()) {
                walk(*inner);
            } else {
                report(node);
            }
            keys.pop_back();
            key_lengths.pop_back();
        }
    }
};

void copy_error(std::string_view message, char *error, size_t error_size) {
    if (error_size == 0) return;
    size_t length = message.size() < error_size - 1 ? message.size() : error_size - 1;
    std::memcpy(error, message.data(), length);
    error[length] = 0;
}

}  // namespace

extern "C" int bc_toml_parse(const char *text, size_t length, bc_toml_visit visit, void *context,
                             char *error, size_t error_size, uint32_t *error_line) noexcept {
    *error_line = 0;
    try {
        std::string_view document(text ? text : "", length);
#if TOML_EXCEPTIONS
        toml::table table;
        try {
            table = toml::parse(document);
        } catch (const toml::parse_error &failure) {
            copy_error(failure.description(), error, error_size);
            *error_line = failure.source().begin.line;
            return -1;
        }
#else
        toml::parse_result result = toml::parse(document);
        if (!result) {
            copy_error(result.error().description(), error, error_size);
            *error_line = result.error().source().begin.line;
            return -1;
        }
        toml::table &table = result.table();
#endif
        Walker walker{visit, context, {}, {}};
        walker.walk(table);
        return 0;
    } catch (const std::exception &failure) {
        copy_error(failure.what(), error, error_size);
        return -1;
    } catch (...) {
        copy_error("toml++ failed", error, error_size);
        return -1;
    }
}
