// RFC 4648 base64 with padding and the standard alphabet: the keyring
// file's keys and etcd's bytes fields.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace regfs {

std::string base64_encode(std::string_view bytes);

// Strict and canonical: the standard alphabet, padding where due, no blanks,
// and the bits the padding drops zero, so whatever decodes encodes back to
// the same text. nullopt otherwise.
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace regfs
