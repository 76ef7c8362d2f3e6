// host:port as users and peers write it: every accepted form parses to the
// right values and prints back the same; malformed text fails with a message.
#include <catch2/catch.hpp>
#include <string>

#include "core/host_port.hpp"

using namespace regfs;

namespace {
HostPort ok(const std::string& text) {
  auto r = HostPort::parse(text);
  INFO(text << " -> " << (r.ok() ? "" : r.error().detail));
  REQUIRE(r.ok());
  return *r;
}
}  // namespace

TEST_CASE("host:port of every accepted form") {
  CHECK(ok("10.0.0.5:8080") == HostPort{"10.0.0.5", 8080});
  CHECK(ok("config.internal:1") == HostPort{"config.internal", 1});
  CHECK(ok("127.0.0.1:0") == HostPort{"127.0.0.1", 0});
  CHECK(ok("localhost:65535") == HostPort{"localhost", 65535});
  CHECK(ok(":7946") == HostPort{"", 7946});
  CHECK(ok("[::1]:80") == HostPort{"::1", 80});
  CHECK(ok("[2001:db8::17]:443") == HostPort{"2001:db8::17", 443});
  CHECK(ok("[::]:7946") == HostPort{"::", 7946});
  CHECK(ok("[::ffff:10.0.0.1]:80") == HostPort{"::ffff:10.0.0.1", 80});
  // Without brackets the port follows the last colon.
  CHECK(ok("::1:7946") == HostPort{"::1", 7946});
}

TEST_CASE("host:port prints back as it is written") {
  for (const char* text : {"10.0.0.5:8080", "config.internal:1", "127.0.0.1:0", ":7946",
                           "[::1]:80", "[2001:db8::17]:443", "[::]:7946"}) {
    CHECK(ok(text).to_string() == text);
  }
  CHECK(ok("::1:7946").to_string() == "[::1]:7946");
  CHECK(HostPort{"fe80::1", 9}.host_text() == "[fe80::1]");
  CHECK(HostPort{"web", 9}.host_text() == "web");
  CHECK(HostPort{"fe80::1", 9}.is_ipv6());
  CHECK_FALSE(HostPort{"10.0.0.1", 9}.is_ipv6());
}

TEST_CASE("malformed host:port is refused with a message") {
  for (const char* text : {"", "10.0.0.5", "10.0.0.5:", "10.0.0.5:65536", "10.0.0.5:abc",
                           "10.0.0.5:80x", "10.0.0.5:-1", "10.0.0.5:+80", "10.0.0.5: 80",
                           "10.0.0.5:000080", "[::1:80", "[::1]80", "[::1]", "[::1]:",
                           "[::1]:x", "[::1]x:80", ":", "99999999999999999999"}) {
    INFO(text);
    auto r = HostPort::parse(text);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == Errc::invalid_line);
    CHECK_FALSE(r.error().detail.empty());
  }
}

TEST_CASE("a minimum port refuses port 0 and says so") {
  CHECK(HostPort::parse("10.0.0.5:0").ok());
  auto r = HostPort::parse("10.0.0.5:0", 1);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().detail.find("1-65535") != std::string::npos);
  CHECK(HostPort::parse("10.0.0.5:1", 1).ok());
}
