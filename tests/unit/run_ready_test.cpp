// regfs run's pure parts: reading /proc/net/tcp{,6}, the order in which a
// port's listeners are checked, and the endpoint each is registered as.
#include <arpa/inet.h>
#include <catch2/catch.hpp>
#include <string>

#include "cli.hpp"
#include "run_ready.hpp"

using namespace regfs::cli;

namespace {
const char* kTcp =
    "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
    "   0: 0200007F:8339 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 26419 1 0 100 0 0 10 0\n"
    "   1: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 555 1 0 100 0 0 10 0\n"
    "   2: 0100007F:1F91 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 556 1 0 20 4 30 10 -1\n"
    "   3: 0100007F:1F92 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 999 1 0 100 0 0 10 0\n";
const char* kTcp6 =
    "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
    "   0: 00000000000000000000000001000000:8D93 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 26418 1 0 100 0 0 10 0\n"
    "   1: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 557 1 0 100 0 0 10 0\n";

Listener v4(const char* host, std::uint16_t port) {
  Listener l;
  l.port = port;
  REQUIRE(inet_pton(AF_INET, host, l.address.data()) == 1);
  return l;
}
}  // namespace

TEST_CASE("listening sockets of the given inodes, with their addresses") {
  const auto v4s = listening_sockets(kTcp, {26419, 555, 556});
  REQUIRE(v4s.size() == 2);  // 556 is not listening, 999 is not ours
  CHECK(v4s[0].host() == "127.0.0.2");
  CHECK(v4s[0].port == 0x8339);
  CHECK_FALSE(v4s[0].wildcard());
  CHECK(v4s[0].loopback());
  CHECK(v4s[1].wildcard());
  CHECK(v4s[1].port == 8080);

  const auto v6s = listening_sockets(kTcp6, {26418, 557});
  REQUIRE(v6s.size() == 2);
  CHECK(v6s[0].ipv6);
  CHECK(v6s[0].host() == "::1");
  CHECK(v6s[0].loopback());
  CHECK(v6s[1].wildcard());
  CHECK(v6s[1].host() == "::");

  CHECK(listening_sockets("header\n   0: 0100007F:zz90 00000000:0000 0A 0:0 0:0 0 0 0 1\n", {1}).empty());
  CHECK(listening_sockets("header\n   0: 0100007F:0000 00000000:0000 0A 0:0 0:0 0 0 0 1\n", {1}).empty());
  CHECK(listening_sockets("header\n   0: 0100007F 00000000:0000 0A 0:0 0:0 0 0 0 1\n", {1}).empty());
  CHECK(listening_sockets("", {1}).empty());
}

TEST_CASE("a port's listeners are checked wildcard first, loopback last") {
  const auto order = in_check_order({v4("127.0.0.1", 80), v4("10.0.0.5", 80), v4("0.0.0.0", 80),
                                     v4("127.0.0.1", 80)});
  REQUIRE(order.size() == 3);
  CHECK(order[0].wildcard());
  CHECK(order[1].host() == "10.0.0.5");
  CHECK(order[2].host() == "127.0.0.1");
}

TEST_CASE("a listener is registered where it listens; a wildcard under the advertised address") {
  CHECK(endpoint_for(v4("0.0.0.0", 8080)) == ":8080");
  CHECK(endpoint_for(v4("10.0.0.5", 8080)) == "10.0.0.5:8080");
  const auto v6s = listening_sockets(kTcp6, {26418, 557});
  CHECK(endpoint_for(v6s[0]) == "[::1]:36243");
  CHECK(endpoint_for(v6s[1]) == ":8080");
}
