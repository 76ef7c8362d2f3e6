// The versioned wire format: frames of length-prefixed messages.
//
//   frame   = 'R' 'G' version:u8 channel:u8 sender-name:str sender-gen:varint message*
//   message = type:u8 length:varint body[length]
//
// Unknown message types are skipped (a newer peer may send more kinds), and a
// body may carry trailing bytes a newer peer appended. Everything else that
// does not match the layout fails the whole frame. The frame is plaintext:
// the transport seals it (daemon/transport/keyring.hpp), which is why
// max_packet leaves kSealReserve bytes of a 1400-byte datagram free.
//
// Decoding is pure and bounded: it never reads past the input, never throws,
// and allocates at most a small multiple of the input size.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "cluster/messages.hpp"

namespace regfs::cluster {

inline constexpr std::uint8_t kWireVersion = 1;
inline constexpr std::size_t kDatagram = 1400;    // what one UDP packet may carry
inline constexpr std::size_t kSealReserve = 64;   // room for the transport's seal

struct WireLimits {
  std::size_t max_packet = kDatagram - kSealReserve;  // plaintext bytes of a packet frame
  std::size_t max_stream = 8u << 20;                   // plaintext bytes of a stream frame
  std::size_t max_instances = 256;                     // instances in one entry
  std::size_t max_members = 65536;                     // records in one SyncState
  std::size_t max_items = 65536;                       // entries in one OriginChunk
  // Messages, member records, digests, items and instances in one frame, all
  // counted together: what a frame may decode into, whatever it holds.
  std::size_t max_elements = 1u << 18;
};

// A decoded value, or why the bytes were refused.
template <typename T>
class [[nodiscard]] Decoded {
 public:
  Decoded(T value) : v_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  static Decoded failure(std::string why) { return Decoded(std::move(why), 0); }
  bool ok() const { return v_.index() == 0; }
  T& value() { return std::get<0>(v_); }
  const std::string& error() const { return std::get<1>(v_); }

 private:
  Decoded(std::string why, int) : v_(std::in_place_index<1>, std::move(why)) {}
  std::variant<T, std::string> v_;
};

// One message with its type and length prefix: the unit that is queued for
// gossip and packed into frames.
std::vector<std::uint8_t> encode_message(const Message& m);

// The frame header; append encoded messages to it.
std::vector<std::uint8_t> encode_header(Channel channel, const NodeId& sender);
// Its size: it grows with the sender's name (up to 144 bytes), so what a
// packet has left for messages is max_packet minus this, not a constant.
std::size_t header_size(const NodeId& sender);

// Header plus every message, without checking any size limit.
std::vector<std::uint8_t> encode_frame(Channel channel, const NodeId& sender,
                                       std::span<const Message> messages);

// Parses a whole frame. Fails on a bad magic, an unsupported version, a
// frame over the channel's limit, or any malformed known message.
Decoded<Frame> decode_frame(std::span<const std::uint8_t> bytes, const WireLimits& limits);

}  // namespace regfs::cluster
