// The transport on real sockets (loopback): replays of captured datagrams
// and stream exchanges, the clock tolerance, key rotation, the listener's
// limits and its pause after failed accepts.
#include <catch2/catch.hpp>

#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <sys/resource.h>
#include <thread>

#include "transport/transport.hpp"

using namespace regfs;
using namespace regfs::transport;
namespace asio = boost::asio;
using asio::ip::tcp;
using asio::ip::udp;

namespace {

struct Received {
  std::string from;
  bool stream = false;
  std::vector<std::uint8_t> frame;
};

// One transport on 127.0.0.1 and what it delivered.
struct Peer {
  std::vector<Received> got;
  std::unique_ptr<Transport> t;
  Peer(asio::io_context& io, std::optional<Keyring> ring, StreamLimits limits = {}) {
    auto opened = Transport::open(io, "127.0.0.1:0", std::move(ring), limits,
                                  [this](const std::string& from, bool stream, std::span<const std::uint8_t> f) {
                                    got.push_back({from, stream, {f.begin(), f.end()}});
                                  });
    REQUIRE(opened.ok());
    t = std::move(*opened);
    t->set_advertised(addr());
  }
  std::string addr() const { return "127.0.0.1:" + std::to_string(t->port()); }
};

Keyring ring(const std::vector<std::string>& keys) {
  std::string text;
  for (const auto& k : keys) text += k + "\n";
  auto r = Keyring::parse(text);
  REQUIRE(r.ok());
  return *r;
}

// Runs the loop until `done` holds or 5 s pass; returns `done()`.
bool run_until(asio::io_context& io, const std::function<bool()>& done) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!done() && std::chrono::steady_clock::now() < end) {
    io.restart();
    io.run_for(std::chrono::milliseconds(5));
  }
  return done();
}

std::vector<std::uint8_t> bytes(const std::string& s) { return {s.begin(), s.end()}; }

}  // namespace

TEST_CASE("a captured datagram replayed is refused and counted, also from another source") {
  asio::io_context io;
  const Keyring k = ring({Keyring::generate_key()});
  Peer a(io, k), b(io, k);
  udp::socket tap(io, udp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  a.t->send_packet("127.0.0.1:" + std::to_string(tap.local_endpoint().port()), bytes("ping"));
  REQUIRE(run_until(io, [&] { return tap.available() > 0; }));
  std::vector<std::uint8_t> captured(2048);
  udp::endpoint sender;
  captured.resize(tap.receive_from(asio::buffer(captured), sender));

  const udp::endpoint to(asio::ip::make_address("127.0.0.1"), b.t->port());
  tap.send_to(asio::buffer(captured), to);  // the first copy is delivered
  REQUIRE(run_until(io, [&] { return b.got.size() == 1; }));
  CHECK(b.got[0].frame == bytes("ping"));
  tap.send_to(asio::buffer(captured), to);  // the replay is not
  udp::socket spoof(io, udp::endpoint(asio::ip::make_address("127.0.0.2"), 0));
  spoof.send_to(asio::buffer(captured), to);  // nor from another address
  REQUIRE(run_until(io, [&] { return b.t->stats().replays == 2; }));
  CHECK(b.got.size() == 1);

  // Fresh datagrams from the same sender still pass.
  a.t->send_packet(b.addr(), bytes("ping 2"));
  REQUIRE(run_until(io, [&] { return b.got.size() == 2; }));
}

TEST_CASE("a datagram stamped beyond the clock tolerance is refused and counted") {
  asio::io_context io;
  const Keyring k = ring({Keyring::generate_key()});
  Peer b(io, k);
  udp::socket s(io, udp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  const udp::endpoint to(asio::ip::make_address("127.0.0.1"), b.t->port());
  const std::uint64_t now = wall_ms();
  s.send_to(asio::buffer(k.seal(SealKind::packet, now - kClockToleranceMs - 5000, bytes("old"))), to);
  s.send_to(asio::buffer(k.seal(SealKind::packet, now + kClockToleranceMs + 5000, bytes("future"))), to);
  REQUIRE(run_until(io, [&] { return b.t->stats().stale == 2; }));
  CHECK(b.t->stats().last_stale_skew_ms > static_cast<std::int64_t>(kClockToleranceMs));
  s.send_to(asio::buffer(k.seal(SealKind::packet, now, bytes("now"))), to);
  REQUIRE(run_until(io, [&] { return b.got.size() == 1; }));
  CHECK(b.got[0].frame == bytes("now"));
  // Stream kinds are not datagrams.
  s.send_to(asio::buffer(k.seal(SealKind::stream_body, now, bytes("body"))), to);
  REQUIRE(run_until(io, [&] { return b.t->stats().auth_failures == 1; }));
}

TEST_CASE("a stream frame arrives with its sender's address; a recorded exchange replayed does not") {
  asio::io_context io;
  const Keyring k = ring({Keyring::generate_key()});
  Peer a(io, k), b(io, k);
  a.t->send_stream(b.addr(), bytes("sync hello"));
  REQUIRE(run_until(io, [&] { return b.got.size() == 1; }));
  CHECK(b.got[0].stream);
  CHECK(b.got[0].from == a.addr());
  CHECK(b.got[0].frame == bytes("sync hello"));

  // A proxy in the middle records an exchange from a to b, then plays it to b again.
  asio::io_context pio;  // the proxy's, used from its thread only
  tcp::acceptor proxy(pio, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  std::vector<std::uint8_t> recorded;
  std::atomic<bool> relayed{false}, replayed{false};
  std::thread mitm([&] {
    tcp::socket from_a(pio);
    proxy.accept(from_a);
    tcp::socket to_b(pio);
    to_b.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), b.t->port()));
    std::array<std::uint8_t, 20> challenge{};
    asio::read(to_b, asio::buffer(challenge));
    asio::write(from_a, asio::buffer(challenge));
    boost::system::error_code ec;
    std::array<std::uint8_t, 4096> buf{};
    for (std::size_t n; (n = from_a.read_some(asio::buffer(buf), ec)) > 0 || !ec;) {
      recorded.insert(recorded.end(), buf.begin(), buf.begin() + static_cast<long>(n));
    }
    asio::write(to_b, asio::buffer(recorded));
    to_b.close();
    relayed = true;
    tcp::socket again(pio);
    again.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), b.t->port()));
    asio::read(again, asio::buffer(challenge));
    asio::write(again, asio::buffer(recorded));
    replayed = true;
    (void)again.read_some(asio::buffer(buf), ec);  // b closes it
  });
  a.t->send_stream("127.0.0.1:" + std::to_string(proxy.local_endpoint().port()), bytes("sync hello 2"));
  REQUIRE(run_until(io, [&] { return b.got.size() == 2; }));
  CHECK(b.got[1].frame == bytes("sync hello 2"));
  REQUIRE(run_until(io, [&] { return replayed && b.t->stats().auth_failures == 1; }));
  mitm.join();
  CHECK(b.got.size() == 2);
}

TEST_CASE("keys rotate: each side opens what the other seals with its first key") {
  asio::io_context io;
  const auto k1 = Keyring::generate_key(), k2 = Keyring::generate_key();
  Peer a(io, ring({k1, k2})), b(io, ring({k2, k1})), stranger(io, ring({Keyring::generate_key()}));
  a.t->send_packet(b.addr(), bytes("a to b"));
  b.t->send_packet(a.addr(), bytes("b to a"));
  a.t->send_stream(b.addr(), bytes("a to b, stream"));
  b.t->send_stream(a.addr(), bytes("b to a, stream"));
  REQUIRE(run_until(io, [&] { return a.got.size() == 2 && b.got.size() == 2; }));
  stranger.t->send_packet(b.addr(), bytes("x"));
  stranger.t->send_stream(b.addr(), bytes("x"));
  REQUIRE(run_until(io, [&] { return b.t->stats().auth_failures == 2; }));
  CHECK(b.got.size() == 2);
}

TEST_CASE("connections that announce 8 MiB and send nothing are bounded; a peer is still served") {
  asio::io_context io;
  const Keyring k = ring({Keyring::generate_key()});
  StreamLimits limits;
  limits.max_connections = 8;
  limits.max_per_source = 4;
  limits.handshake_timeout = std::chrono::milliseconds(300);
  Peer a(io, k), b(io, k, limits);
  // 40 connections from 10 source addresses, each sending only the length
  // header of an 8 MiB frame, as the old transport read it.
  std::vector<std::unique_ptr<tcp::socket>> junk;
  const std::array<std::uint8_t, 4> eight_mib{0x00, 0x80, 0x00, 0x00};
  for (int i = 0; i < 40; ++i) {
    auto s = std::make_unique<tcp::socket>(io);
    s->open(tcp::v4());
    s->bind(tcp::endpoint(asio::ip::make_address("127.0.0." + std::to_string(10 + i % 10)), 0));
    s->connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), b.t->port()));
    asio::write(*s, asio::buffer(eight_mib));
    junk.push_back(std::move(s));
  }
  REQUIRE(run_until(io, [&] { return b.t->stats().streams_refused >= 32; }));
  CHECK(b.t->stats().streams_open <= limits.max_connections);
  // A key holder's exchange makes room: the oldest unauthenticated goes.
  a.t->send_stream(b.addr(), bytes("still served"));
  REQUIRE(run_until(io, [&] { return b.got.size() == 1; }));
  // Idle ones run out of time.
  REQUIRE(run_until(io, [&] { return b.t->stats().streams_open == 0; }));
  CHECK(b.t->stats().stream_timeouts >= 1);
  CHECK(b.t->stats().auth_failures == 0);  // none of them ever sent a whole header
}

TEST_CASE("a source over its rate is dropped before decryption and counted; others are served") {
  asio::io_context io;
  const Keyring k = ring({Keyring::generate_key()});
  StreamLimits limits;
  limits.packets_per_source = RateLimit{1, 10};
  limits.streams_per_source = RateLimit{1, 2};
  Peer a(io, k), b(io, k, limits);
  // A flood of datagrams from 127.0.0.2: only its burst is even opened.
  udp::socket flood(io, udp::endpoint(asio::ip::make_address("127.0.0.2"), 0));
  const udp::endpoint to(asio::ip::make_address("127.0.0.1"), b.t->port());
  const std::vector<std::uint8_t> junk(100, 'j');
  for (int i = 0; i < 100; ++i) flood.send_to(asio::buffer(junk), to);
  REQUIRE(run_until(io, [&] { return b.t->stats().packets_in == 100; }));
  const auto& st = b.t->stats();
  CHECK(st.auth_failures + st.packets_rate_limited == 100);
  CHECK(st.auth_failures >= 10);
  CHECK(st.auth_failures <= 12);  // the burst, and what a second of flooding refills
  // A flood of connections from 127.0.0.3: beyond its burst, closed at once.
  std::vector<std::unique_ptr<tcp::socket>> conns;
  for (int i = 0; i < 10; ++i) {
    auto c = std::make_unique<tcp::socket>(io);
    c->open(tcp::v4());
    c->bind(tcp::endpoint(asio::ip::make_address("127.0.0.3"), 0));
    c->connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), b.t->port()));
    conns.push_back(std::move(c));
  }
  REQUIRE(run_until(io, [&] { return b.t->stats().streams_rate_limited >= 7; }));
  CHECK(b.t->stats().streams_rate_limited <= 8);
  // Another source is not held to the flooder's rate.
  a.t->send_packet(b.addr(), bytes("ping"));
  a.t->send_stream(b.addr(), bytes("sync"));
  REQUIRE(run_until(io, [&] { return b.got.size() == 2; }));
}

TEST_CASE("a header that does not open ends the exchange before any body is read") {
  asio::io_context io;
  const Keyring k = ring({Keyring::generate_key()});
  Peer b(io, k);
  tcp::socket s(io);
  s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), b.t->port()));
  REQUIRE(run_until(io, [&] { return s.available() >= 20; }));
  std::array<std::uint8_t, 20> challenge{};
  asio::read(s, asio::buffer(challenge));
  // A header sealed with another key, then a megabyte the receiver must not read.
  const Keyring other = ring({Keyring::generate_key()});
  std::vector<std::uint8_t> len{0x00, 0x10, 0x00, 0x00};
  auto header = other.seal(SealKind::stream_header, wall_ms(), len,
                           std::span(challenge).subspan(4));
  asio::write(s, asio::buffer(header));
  REQUIRE(run_until(io, [&] { return b.t->stats().auth_failures == 1; }));
  CHECK(b.t->stats().streams_open == 0);
  CHECK(b.t->stats().bytes_in == 20 + header.size());
}

TEST_CASE("out of descriptors, the listener pauses instead of spinning, then serves again") {
  asio::io_context io;
  const Keyring k = ring({Keyring::generate_key()});
  Peer a(io, k), b(io, k);
  rlimit saved{};
  REQUIRE(::getrlimit(RLIMIT_NOFILE, &saved) == 0);
  // Connections wait in the backlog while no descriptor is free for accept.
  std::vector<std::unique_ptr<tcp::socket>> waiting;
  for (int i = 0; i < 3; ++i) {
    waiting.push_back(std::make_unique<tcp::socket>(io));
    waiting.back()->connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), b.t->port()));
  }
  rlimit tight = saved;
  tight.rlim_cur = 3;  // below every descriptor already open
  REQUIRE(::setrlimit(RLIMIT_NOFILE, &tight) == 0);
  io.restart();
  io.run_for(std::chrono::milliseconds(500));
  const auto errors = b.t->stats().accept_errors;
  REQUIRE(::setrlimit(RLIMIT_NOFILE, &saved) == 0);
  CHECK(errors >= 1);
  CHECK(errors <= 10);  // 10, 20, 40, 80, 160 ms ... pauses: not thousands of retries
  a.t->send_stream(b.addr(), bytes("after the drought"));
  REQUIRE(run_until(io, [&] { return b.got.size() == 1; }));
}

TEST_CASE("stream bodies being received are bounded in all") {
  asio::io_context io;
  const Keyring k = ring({Keyring::generate_key()});
  StreamLimits limits;
  limits.max_buffered = 1000;
  Peer a(io, k), b(io, k, limits);
  a.t->send_stream(b.addr(), std::vector<std::uint8_t>(2000, 'x'));
  REQUIRE(run_until(io, [&] { return b.t->stats().streams_refused == 1; }));
  a.t->send_stream(b.addr(), bytes("small"));
  REQUIRE(run_until(io, [&] { return b.got.size() == 1; }));
  CHECK(b.got[0].frame == bytes("small"));
}

TEST_CASE("a replaced keyring seals from the next frame on; a keyless transport refuses one") {
  asio::io_context io;
  const std::string old_key = Keyring::generate_key(), new_key = Keyring::generate_key();
  Peer a(io, ring({old_key})), b(io, ring({old_key, new_key}));
  a.t->send_packet(b.addr(), bytes("under the old key"));
  REQUIRE(run_until(io, [&] { return b.got.size() == 1; }));

  REQUIRE(a.t->replace_keyring(ring({new_key})).ok());
  CHECK(a.t->stats().keyring_reloads == 1);
  CHECK(a.t->keys() == 1);
  a.t->send_packet(b.addr(), bytes("under the new key"));
  REQUIRE(run_until(io, [&] { return b.got.size() == 2; }));
  CHECK(b.got[1].frame == bytes("under the new key"));
  // b dropped the new key: a's frames no longer open there.
  REQUIRE(b.t->replace_keyring(ring({old_key})).ok());
  a.t->send_packet(b.addr(), bytes("refused"));
  REQUIRE(run_until(io, [&] { return b.t->stats().auth_failures == 1; }));
  CHECK(b.got.size() == 2);

  Peer clear(io, std::nullopt);
  CHECK_FALSE(clear.t->replace_keyring(ring({new_key})).ok());
  CHECK(clear.t->keys() == 0);
  CHECK(clear.t->stats().keyring_reloads == 0);
}

// Found by tests/fuzz/join_file.cpp: a zone number past what atoi reads came
// back as another zone.
TEST_CASE("addresses: an IPv6 zone is kept, a zone number that does not fit is refused") {
  const auto link = parse_addr("[fe80::1%1]:7946");
  REQUIRE(link.has_value());
  CHECK(link->first.to_v6().scope_id() == 1);
  CHECK(parse_addr(format_addr(link->first, link->second)) == link);
  CHECK_FALSE(parse_addr("[fe00::%55555555804389585:7]:4").has_value());
  CHECK_FALSE(parse_addr("[fe80::1%2147483648]:1").has_value());
  CHECK(parse_addr("10.0.0.7:7946").has_value());
}
