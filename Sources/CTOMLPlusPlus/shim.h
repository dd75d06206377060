// toml++ (libtomlplusplus-dev) is a C++ library: only the TOMLShim target includes its headers.
// This module gives that target the library's compile flags (pkg-config tomlplusplus) and link.
