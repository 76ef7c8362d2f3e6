// FNV-1a, 64 bits: a deterministic digest of ordered state, for the cheap
// "are we already in sync?" opening of push-pull. Not a security primitive
// (frames are authenticated by the transport).
#pragma once

#include <cstdint>
#include <string_view>

namespace regfs::cluster {

class Fnv64 {
 public:
  void add(std::string_view s) {
    add(static_cast<std::uint64_t>(s.size()));
    for (char c : s) byte(static_cast<std::uint8_t>(c));
  }
  void add(std::uint64_t v) {
    for (int i = 0; i < 8; ++i) byte(static_cast<std::uint8_t>(v >> (8 * i)));
  }
  std::uint64_t value() const { return h_; }

 private:
  void byte(std::uint8_t b) { h_ = (h_ ^ b) * 0x100000001b3ULL; }
  std::uint64_t h_ = 0xcbf29ce484222325ULL;
};

}  // namespace regfs::cluster
