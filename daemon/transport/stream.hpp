// The stream exchange's pieces shared by its two sides (transport.hpp has
// the layout): constants and the state of one connection.
#pragma once

#include <array>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "transport/transport.hpp"

namespace regfs::transport {

inline constexpr std::array<std::uint8_t, 4> kChallengeMagic{'R', 'F', 2, 'C'};
inline constexpr std::size_t kChallenge = kChallengeMagic.size() + 16;
inline constexpr std::size_t kBodyChunk = 64 * 1024;
inline constexpr std::size_t kMaxAddrBytes = 262;  // as cluster::kMaxAddr

// The header's size on the wire: a sealed u32, or the bare u32 unkeyed.
inline std::size_t header_size(bool keyed) { return keyed ? kSealOverhead + 4 : 4; }

struct Transport::Inbound {
  explicit Inbound(boost::asio::io_context& io) : socket(io), timer(io) {}
  boost::asio::ip::tcp::socket socket;
  boost::asio::steady_timer timer;
  std::uint64_t id = 0;
  std::string source;  // the peer's IP address
  std::chrono::steady_clock::time_point accepted;
  bool authenticated = false;  // its header opened; its body is being read
  bool done = false;
  std::array<std::uint8_t, kChallenge> challenge{};
  std::array<std::uint8_t, kSealOverhead + 4> header{};
  std::size_t expected = 0;  // bytes of the body on the wire
  std::vector<std::uint8_t> body;
};

struct Transport::Outbound {
  explicit Outbound(boost::asio::io_context& io) : socket(io), timer(io) {}
  boost::asio::ip::tcp::socket socket;
  boost::asio::steady_timer timer;
  std::array<std::uint8_t, kChallenge> challenge{};
  std::vector<std::uint8_t> inner;  // u16 addr length, address, frame
  std::vector<std::uint8_t> out;    // header and body as sent
};

// The pure steps of receiving an exchange, apart from the socket so that
// they are tested and fuzzed without one (tests/fuzz/wire_sealed.cpp).
// `keyring` null: the exchange travels unsealed. `context`: the challenge's
// 16 random bytes.
enum class StreamFault : std::uint8_t { none, forged, malformed };
struct StreamHeader {
  StreamFault fault = StreamFault::none;
  std::size_t length = 0;  // bytes of the body on the wire
};
// The header (header_size() bytes): forged when it does not open to 4 bytes,
// malformed when the length is under the seal and the address length or over
// them plus kMaxAddrBytes and max_frame.
StreamHeader open_stream_header(const Keyring* keyring, std::span<const std::uint8_t> context,
                                std::span<const std::uint8_t> header, std::size_t max_frame);
struct StreamBody {
  StreamFault fault = StreamFault::none;
  std::string from;                // the sender's gossip address (parse_addr accepts it)
  std::vector<std::uint8_t> plain;  // u16 addr length, address, frame
  std::size_t frame_at = 0;        // where the frame starts in `plain`
};
// The body: forged when it does not open, malformed when the address is.
StreamBody open_stream_body(const Keyring* keyring, std::span<const std::uint8_t> context,
                            std::vector<std::uint8_t> body);

inline void put_u32(std::vector<std::uint8_t>& out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<std::uint8_t>(v >> shift));
}

inline std::uint32_t get_u32(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3];
}

}  // namespace regfs::transport
