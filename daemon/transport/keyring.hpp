// The cluster's shared keys, and authenticated encryption of every packet.
//
// A keyring holds one or more 32-byte keys. The first seals what this node
// sends; every key is tried to open what arrives, so keys rotate without
// downtime: add the new key second everywhere, then move it first
// everywhere, then drop the old one.
//
// Sealed frame: 'R' 'F' version(1) nonce(24) ciphertext+tag(16), using
// XChaCha20-Poly1305 (libsodium); the 3-byte header is authenticated as
// associated data. Thread-safe after construction (all methods const).
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"

namespace regfs::transport {

inline constexpr std::size_t kKeyBytes = 32;
inline constexpr std::size_t kSealOverhead = 3 + 24 + 16;

using Key = std::array<std::uint8_t, kKeyBytes>;

class Keyring {
 public:
  // A keyring file: one base64 key per line; blank lines and '#' comments ignored.
  static Result<Keyring> parse(std::string_view text);
  static Result<Keyring> load(const std::string& path);
  // A fresh random key, base64 encoded (what `regfs keygen` prints).
  static std::string generate_key();

  explicit Keyring(std::vector<Key> keys);

  std::size_t size() const { return keys_.size(); }

  // Encrypts and authenticates `plain` with the first key.
  std::vector<std::uint8_t> seal(std::span<const std::uint8_t> plain) const;
  // Authenticates and decrypts with any key; an error for anything forged,
  // truncated, oversized or sealed with an unknown key.
  Result<std::vector<std::uint8_t>> open(std::span<const std::uint8_t> sealed) const;

 private:
  std::vector<Key> keys_;
};

// Base64 (standard alphabet, padded). decode fails on anything else.
std::string base64_encode(std::span<const std::uint8_t> bytes);
Result<std::vector<std::uint8_t>> base64_decode(std::string_view text);

}  // namespace regfs::transport
