// The cluster's shared keys, and authenticated encryption of every packet.
//
// A keyring holds one or more 32-byte keys. The first seals what this node
// sends; every key is tried to open what arrives, so keys rotate without
// downtime: add the new key second everywhere, then move it first
// everywhere, then drop the old one.
//
// Sealed frame (seal version 2), XChaCha20-Poly1305 (libsodium):
//
//   'R' 'F' version(1) kind(1) nonce(24) time(8) ciphertext+tag(16)
//
// `kind` says what the frame is for (a datagram, or a stream's header or
// body), so one kind is never accepted as another. The nonce is a 16-byte
// stream id drawn once per sending thread and a 64-bit little-endian counter
// of that stream; `time` is the sender's wall clock in ms since the Unix
// epoch, big-endian. The first 36 bytes (the label) and a caller's
// `context` (a stream's challenge, never sent with the frame) are the
// associated data: the label travels in the clear but cannot be altered,
// which lets a receiver refuse replays before it decrypts.
//
// Thread-safe after construction (all methods const).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"

namespace regfs::transport {

inline constexpr std::size_t kKeyBytes = 32;
inline constexpr std::size_t kSealLabel = 4 + 24 + 8;
inline constexpr std::size_t kSealOverhead = kSealLabel + 16;

enum class SealKind : std::uint8_t { packet = 'P', stream_header = 'H', stream_body = 'B' };

// The clear part of a sealed frame. Unauthenticated until open() succeeds.
struct SealLabel {
  SealKind kind = SealKind::packet;
  std::array<std::uint8_t, 16> stream{};  // the sender's nonce stream
  std::uint64_t counter = 0;              // the frame's place in that stream
  std::uint64_t time_ms = 0;              // the sender's wall clock
};
// Reads the label; nullopt when `sealed` is too short or not a version-2 frame.
std::optional<SealLabel> peek_label(std::span<const std::uint8_t> sealed);

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

  // Encrypts and authenticates `plain` with the first key, labelled `kind`
  // and `time_ms`, bound to `context`.
  std::vector<std::uint8_t> seal(SealKind kind, std::uint64_t time_ms,
                                 std::span<const std::uint8_t> plain,
                                 std::span<const std::uint8_t> context = {}) const;
  // Authenticates and decrypts with any key; an error for anything forged,
  // truncated, oversized, of another kind, bound to another context or
  // sealed with an unknown key.
  Result<std::vector<std::uint8_t>> open(SealKind kind, std::span<const std::uint8_t> sealed,
                                         std::span<const std::uint8_t> context = {}) const;

 private:
  std::vector<Key> keys_;
};

// Unpredictable bytes (libsodium's generator).
void random_bytes(std::span<std::uint8_t> out);


}  // namespace regfs::transport
