// The cluster's network: UDP datagrams for probes and gossip, TCP for the
// push-pull state exchange, every frame sealed with the keyring.
//
// A stream frame travels as [u32 length][sealed([u16 addr length][sender's
// gossip address][frame])] on a fresh TCP connection, so the receiver knows
// where to answer. Anything that fails authentication, is malformed or is
// over a limit is dropped and counted, never delivered.
//
// Not thread-safe: the io_context's thread only.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/result.hpp"
#include "transport/keyring.hpp"

namespace regfs::transport {

struct TransportStats {
  std::uint64_t packets_in = 0, packets_out = 0, streams_in = 0, streams_out = 0;
  std::uint64_t bytes_in = 0, bytes_out = 0;
  std::uint64_t auth_failures = 0;  // frames no key of the keyring opens
  std::uint64_t dropped = 0;        // oversized, malformed, or a send that failed
};

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

  const TransportStats& stats() const { return stats_; }

 private:
  Transport(boost::asio::io_context& io, std::optional<Keyring> keyring, std::size_t max_stream,
            Deliver deliver);
  void receive_packet();
  // Sends one sealed datagram when the socket takes it; a failure counts as dropped.
  void queue_sealed(const boost::asio::ip::udp::endpoint& to, std::vector<std::uint8_t> sealed);
  void accept_stream();
  std::vector<std::uint8_t> seal(std::span<const std::uint8_t> plain) const;
  std::optional<std::vector<std::uint8_t>> open_frame(std::span<const std::uint8_t> sealed);

  boost::asio::io_context& io_;
  std::optional<Keyring> keyring_;
  std::size_t max_stream_;
  Deliver deliver_;
  boost::asio::ip::udp::socket udp_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::vector<std::uint8_t> packet_buf_;
  boost::asio::ip::udp::endpoint packet_from_;
  std::uint16_t port_ = 0;
  std::string advertised_;
  TransportStats stats_;
  bool closed_ = false;
};

// "ip:port" or "[v6]:port" to an address and port; nullopt when malformed.
std::optional<std::pair<boost::asio::ip::address, std::uint16_t>> parse_addr(const std::string& text);
std::string format_addr(const boost::asio::ip::address& a, std::uint16_t port);

}  // namespace regfs::transport
