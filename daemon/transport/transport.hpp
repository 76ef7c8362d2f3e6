// The cluster's network: UDP datagrams for probes and gossip, TCP for the
// push-pull state exchange, every frame sealed with the keyring.
//
// A datagram is one sealed frame (keyring.hpp, kind 'P'); its label's stream
// and counter go through a ReplayGuard, so a datagram is delivered at most
// once and only within the clock tolerance of its time stamp.
//
// A stream frame travels on a fresh TCP connection as a short exchange:
//
//   receiver -> sender   challenge: 'R' 'F' 2 'C' random(16)
//   sender -> receiver   header: sealed('H', u32 BE length of the body), 56 bytes
//                        body:   sealed('B', u16 BE addr length, sender's gossip address, frame)
//
// Both seals are bound to the challenge, so a recorded exchange cannot be
// played to the receiver again. The receiver reads the fixed-size header
// into a fixed buffer and opens it before it reserves anything for the body,
// then reads the body in chunks of at most 64 KiB as the bytes arrive. It
// answers to the sender's address on a new connection. Without a keyring the
// same exchange travels unsealed (the header is the bare u32).
//
// The listener holds at most StreamLimits::max_connections exchanges at
// once and max_per_source from one source address; at either limit the
// oldest exchange still waiting for its header makes room, else the new
// connection is closed. An exchange must send its header within
// handshake_timeout and its whole frame within exchange_timeout; the bodies
// being received may announce max_buffered bytes in all. An accept that
// fails (EMFILE and the like) is retried after a pause that doubles from
// 10 ms up to 1 s.
//
// Each source address may send StreamLimits::packets_per_source datagrams
// and open streams_per_source connections a second; the excess is dropped
// before any decryption.
//
// Anything that fails authentication, is malformed, replayed, stale or over a
// limit is dropped and counted, never delivered.
//
// Not thread-safe: the io_context's thread only.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/result.hpp"
#include "transport/keyring.hpp"
#include "transport/rate_limit.hpp"
#include "transport/replay.hpp"

namespace regfs::transport {

struct TransportStats {
  std::uint64_t packets_in = 0, packets_out = 0, streams_in = 0, streams_out = 0;
  std::uint64_t bytes_in = 0, bytes_out = 0;
  std::uint64_t auth_failures = 0;    // frames no key of the keyring opens
  std::uint64_t dropped = 0;          // oversized, malformed, or a send that failed
  std::uint64_t replays = 0;          // authentic datagrams delivered before
  std::uint64_t stale = 0;            // authentic datagrams stamped beyond the clock tolerance
  std::int64_t last_stale_skew_ms = 0;  // the latest of them: its time minus ours
  std::string last_stale_from;
  std::uint64_t streams_refused = 0;  // connections closed at a limit, or evicted for room
  std::uint64_t stream_timeouts = 0;  // inbound exchanges that ran out of time
  std::uint64_t accept_errors = 0;    // accepts that failed (EMFILE, ENFILE, ENOBUFS ...)
  std::uint64_t streams_open = 0;     // inbound exchanges in progress now
  std::uint64_t keyring_reloads = 0;  // keyrings replaced while running
  std::uint64_t packets_rate_limited = 0;  // datagrams dropped: their source was over its rate
  std::uint64_t streams_rate_limited = 0;  // connections closed: their source was over its rate
};

struct StreamLimits {
  std::size_t max_frame = 8u << 20;       // plaintext bytes of a stream frame
  std::size_t max_connections = 128;      // inbound exchanges at once
  std::size_t max_per_source = 16;        // ... from one source address
  std::size_t max_buffered = 32u << 20;   // body bytes announced by the exchanges in progress
  std::chrono::milliseconds handshake_timeout{2000};  // accept to an opened header
  std::chrono::milliseconds exchange_timeout{5000};   // accept to the whole frame
  // Per source address (rate_limit.hpp): datagrams and connections a second.
  // A member sends a peer about a hundred datagrams a second at most (probes,
  // acks, gossip rounds every 20 ms) and opens a few exchanges a second (state
  // syncs, catch-up every 200 ms); these leave room for dozens of daemons
  // sharing one address behind NAT.
  RateLimit packets_per_source{10000, 20000};
  RateLimit streams_per_source{500, 1000};
};

// How far a datagram's time stamp may be from the receiver's clock.
inline constexpr std::uint64_t kClockToleranceMs = 60'000;

class Transport {
 public:
  // (from, is_stream, plaintext frame)
  using Deliver = std::function<void(const std::string&, bool, std::span<const std::uint8_t>)>;

  // Binds UDP and TCP on `bind` ("ip:port"; port 0 picks one, the same for
  // both). Without a keyring frames travel in the clear (loopback or
  // --insecure only; the daemon enforces that). `io` must outlive this.
  static Result<std::unique_ptr<Transport>> open(boost::asio::io_context& io,
                                                 const std::string& bind,
                                                 std::optional<Keyring> keyring,
                                                 StreamLimits limits, Deliver deliver);
  static Result<std::unique_ptr<Transport>> open(boost::asio::io_context& io,
                                                 const std::string& bind,
                                                 std::optional<Keyring> keyring,
                                                 std::size_t max_stream, Deliver deliver);
  ~Transport();

  // The port bound (useful with port 0).
  std::uint16_t port() const { return port_; }
  // Our gossip address as peers should see it (set before the first send).
  void set_advertised(std::string addr) { advertised_ = std::move(addr); }

  void send_packet(const std::string& to, std::vector<std::uint8_t> frame);
  // Sends many datagrams with one system call (sendmmsg), so a change meant
  // for 99 peers leaves before the first of them is woken and competes for
  // the CPU with the sender. What the socket cannot take now goes out as
  // send_packet would send it.
  struct Datagram {
    std::string to;
    std::vector<std::uint8_t> frame;
  };
  void send_packets(std::vector<Datagram> batch);
  void send_stream(const std::string& to, std::vector<std::uint8_t> frame);
  void close();

  // Seals with `keyring` from now on and opens with its keys only: how keys
  // rotate without a restart (keyring.hpp). Refused when the transport runs
  // without a key: adding one changes the frames' format, so it takes a restart.
  Status replace_keyring(Keyring keyring);
  // Keys in the keyring (0: none, frames in the clear).
  std::size_t keys() const { return keyring_ ? keyring_->size() : 0; }

  const TransportStats& stats() const { return stats_; }

  struct Inbound;   // one inbound exchange (stream_in.cpp)
  struct Outbound;  // one outbound exchange (stream_out.cpp)

 private:
  Transport(boost::asio::io_context& io, std::optional<Keyring> keyring, StreamLimits limits,
            Deliver deliver);
  void receive_packet();
  void on_packet(std::span<const std::uint8_t> data);
  std::vector<std::uint8_t> seal_packet(std::span<const std::uint8_t> frame) const;
  // Sends one sealed datagram when the socket takes it; a failure counts as dropped.
  void queue_sealed(const boost::asio::ip::udp::endpoint& to, std::vector<std::uint8_t> sealed);

  // stream_in.cpp
  void accept_stream();
  void admit(std::shared_ptr<Inbound> conn);
  bool make_room(const std::string& source);
  void read_header(const std::shared_ptr<Inbound>& conn);
  void on_header(const std::shared_ptr<Inbound>& conn);
  void read_body(const std::shared_ptr<Inbound>& conn);
  void on_body(const std::shared_ptr<Inbound>& conn);
  void finish(const std::shared_ptr<Inbound>& conn);

  boost::asio::io_context& io_;
  std::optional<Keyring> keyring_;
  StreamLimits limits_;
  Deliver deliver_;
  boost::asio::ip::udp::socket udp_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer accept_timer_;
  std::chrono::milliseconds accept_pause_{0};
  std::vector<std::uint8_t> packet_buf_;
  boost::asio::ip::udp::endpoint packet_from_;
  ReplayGuard replay_{kClockToleranceMs};
  RateLimiter packet_rate_;
  RateLimiter stream_rate_;
  std::uint16_t port_ = 0;
  std::string advertised_;
  TransportStats stats_;
  // Inbound exchanges in accept order (the id counts up), and how many per source.
  std::map<std::uint64_t, std::shared_ptr<Inbound>> inbound_;
  std::map<std::string, std::size_t> per_source_;
  std::uint64_t next_inbound_ = 0;
  std::size_t buffered_ = 0;  // body bytes announced by the exchanges in inbound_
  bool closed_ = false;
};

// "ip:port" or "[v6]:port" to an address and port; nullopt when malformed.
std::optional<std::pair<boost::asio::ip::address, std::uint16_t>> parse_addr(const std::string& text);
std::string format_addr(const boost::asio::ip::address& a, std::uint16_t port);

// The wall clock in ms since the Unix epoch, as sealed frames carry it.
std::uint64_t wall_ms();

}  // namespace regfs::transport
