// Registration lines: what users write through the mount. Valid input parses
// to the right values; hostile input fails with a clear error.
#include <catch2/catch.hpp>
#include <string>

#include "core/instance.hpp"

using namespace regfs;

namespace {
const Limits kLimits;

InstanceSpec ok_line(const std::string& line) {
  auto r = parse_line(line, kLimits);
  INFO(line << " -> " << (r.ok() ? "" : r.error().detail));
  REQUIRE(r.ok());
  return *r;
}

Errc bad_line(const std::string& line) {
  auto r = parse_line(line, kLimits);
  INFO(line);
  REQUIRE_FALSE(r.ok());
  CHECK_FALSE(r.error().detail.empty());
  return r.error().code;
}
}  // namespace

TEST_CASE("endpoints of every accepted form") {
  CHECK(ok_line("10.0.0.5:8080").endpoint == Endpoint{"10.0.0.5", 8080});
  CHECK(ok_line("  10.0.0.5:8080\t").endpoint == Endpoint{"10.0.0.5", 8080});
  CHECK(ok_line("config.internal:8888").endpoint == Endpoint{"config.internal", 8888});
  CHECK(ok_line("localhost:1").endpoint == Endpoint{"localhost", 1});
  CHECK(ok_line("[::1]:65535").endpoint == Endpoint{"::1", 65535});
  CHECK(ok_line("[2001:db8::17]:443").endpoint == Endpoint{"2001:db8::17", 443});
  CHECK(ok_line("[::ffff:10.0.0.1]:80").endpoint == Endpoint{"::ffff:10.0.0.1", 80});
  CHECK(ok_line(":8080").endpoint.uses_advertise());
  CHECK(ok_line("0.0.0.0:8080").endpoint.uses_advertise());
  CHECK(ok_line("[::]:8080").endpoint.uses_advertise());
}

TEST_CASE("checks") {
  CHECK(ok_line("10.0.0.5:80").check.kind == Check::Kind::tcp);
  CHECK(ok_line("10.0.0.5:80 check=tcp").check.kind == Check::Kind::tcp);
  CHECK(ok_line("10.0.0.5:80 check=none").check.kind == Check::Kind::none);
  const auto http = ok_line("10.0.0.5:80   check=http:/actuator/health");
  CHECK(http.check.kind == Check::Kind::http);
  CHECK(http.check.path == "/actuator/health");
  CHECK(ok_line("10.0.0.5:80 check=http:/h?x=1").check.path == "/h?x=1");
}

TEST_CASE("malformed lines are refused") {
  for (const char* line : {"", "10.0.0.5", "10.0.0.5:", "10.0.0.5:0", "10.0.0.5:65536",
                           "10.0.0.5:abc", "10.0.0.5:80x", "10.0.0.5:-1", "256.0.0.1:80",
                           "1.2.3:80", "1.2.3.4.5:80", "01.2.3.4:80", "-bad.host:80",
                           "bad-.host:80", "a..b:80", "host_name:80", "[::1:80", "[::1]80",
                           "[:::1]:80", "[1:2:3:4:5:6:7:8:9]:80", "[zz::1]:80", "::1:80",
                           "10.0.0.5:80 check=", "10.0.0.5:80 check=udp",
                           "10.0.0.5:80 check=http:", "10.0.0.5:80 check=http:health",
                           "10.0.0.5:80 check=http:/a b", "10.0.0.5:80 extra",
                           "10.0.0.5:80 check=tcp check=none", "10.0.0.5:80 CHECK=tcp"}) {
    CHECK(bad_line(line) == Errc::invalid_line);
  }
  CHECK(bad_line(std::string("10.0.0.5:80\0", 12)) == Errc::invalid_line);
  CHECK(bad_line("10.0.0.5:80 check=http:/\x01") == Errc::invalid_line);
  CHECK(bad_line(std::string(600, 'a')) == Errc::line_too_long);
  CHECK(bad_line(std::string(300, 'a') + ".com:80") == Errc::invalid_line);  // host > 253
}

TEST_CASE("a registration of several lines") {
  auto r = parse_registration("10.0.0.5:80\n\n  \n10.0.0.6:80 check=none\n", kLimits);
  REQUIRE(r.ok());
  REQUIRE(r->size() == 2);
  CHECK((*r)[1].check.kind == Check::Kind::none);

  SECTION("the last newline is optional") {
    auto r2 = parse_registration("10.0.0.5:80", kLimits);
    REQUIRE(r2.ok());
    CHECK(r2->size() == 1);
  }
  SECTION("a repeated endpoint keeps its last line") {
    auto r3 = parse_registration("10.0.0.5:80\n10.0.0.5:80 check=none\n", kLimits);
    REQUIRE(r3.ok());
    REQUIRE(r3->size() == 1);
    CHECK((*r3)[0].check.kind == Check::Kind::none);
  }
  SECTION("one bad line fails the whole write") {
    auto r4 = parse_registration("10.0.0.5:80\nnonsense\n", kLimits);
    REQUIRE_FALSE(r4.ok());
    CHECK(r4.error().detail.find("nonsense") != std::string::npos);
  }
  SECTION("CRLF line ends are accepted") {
    auto r5 = parse_registration("10.0.0.5:80\r\n10.0.0.6:80\r\n", kLimits);
    REQUIRE(r5.ok());
    CHECK(r5->size() == 2);
  }
}

TEST_CASE("too many instances in one write") {
  Limits small;
  small.max_instances_per_service = 3;
  std::string text;
  for (int i = 1; i <= 4; ++i) text += "10.0.0." + std::to_string(i) + ":80\n";
  auto r = parse_registration(text, small);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == Errc::too_many_instances);
}

TEST_CASE("lines round-trip through to_line") {
  for (const char* line : {"10.0.0.5:8080", "[::1]:80 check=none", ":9000 check=http:/health",
                           "db.internal:5432"}) {
    CHECK(to_line(ok_line(line)) == line);
  }
}

TEST_CASE("service names") {
  CHECK(valid_service_name("config-server"));
  CHECK(valid_service_name("A.b_c-9"));
  CHECK(valid_service_name(std::string(128, 'x')));
  CHECK_FALSE(valid_service_name(""));
  CHECK_FALSE(valid_service_name(".hidden"));
  CHECK_FALSE(valid_service_name(std::string(129, 'x')));
  CHECK_FALSE(valid_service_name("a/b"));
  CHECK_FALSE(valid_service_name("a b"));
  CHECK_FALSE(valid_service_name("é"));
}

TEST_CASE("random bytes never crash the parser") {
  std::uint64_t state = 0x9e3779b97f4a7c15ULL;
  auto next = [&] {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  };
  const std::string alphabet = "0123456789.:[]abcdef check=http:/none\n\t\r\0\xff";
  for (int round = 0; round < 20000; ++round) {
    std::string text(next() % 80, ' ');
    for (char& c : text) c = alphabet[next() % alphabet.size()];
    auto r = parse_registration(text, kLimits);
    if (r.ok()) {
      for (const auto& spec : *r) CHECK(parse_line(to_line(spec), kLimits).ok());
    }
  }
}

TEST_CASE("removals: -ENDPOINT lines name the instances to remove") {
  CHECK(is_removal("-:8080\n"));
  CHECK(is_removal("  \n -10.0.0.5:80"));
  CHECK_FALSE(is_removal("10.0.0.5:80\n-10.0.0.6:80\n"));
  // No registration line starts with '-' (no host does), so the forms cannot mix.
  CHECK_FALSE(parse_registration("10.0.0.5:80\n-10.0.0.6:80\n", kLimits).ok());
  CHECK_FALSE(parse_registration("-:80\n", kLimits).ok());
  CHECK_FALSE(is_removal(""));
  CHECK_FALSE(is_removal("\n \n"));

  auto r = parse_removal("-:8080\n\n -[::1]:81 check=http:/health\n-0.0.0.0:8080\n", kLimits);
  REQUIRE(r.ok());
  REQUIRE(r->size() == 2);  // :8080 and 0.0.0.0:8080 are the same endpoint
  CHECK((*r)[0].endpoint == Endpoint{"::1", 81});
  CHECK((*r)[1].endpoint == Endpoint{"", 8080});

  for (const char* bad : {"-:8080\n10.0.0.5:80\n", "-\n", "--:80\n", "-nonsense\n", "- :80 x\n",
                          "-:0\n"}) {
    INFO(bad);
    CHECK_FALSE(parse_removal(bad, kLimits).ok());
  }
  CHECK_FALSE(parse_removal(std::string("-:80\0\n", 6), kLimits).ok());
  CHECK(parse_removal("-:80\n-" + std::string(600, 'a') + ":80\n", kLimits).error().code ==
        Errc::line_too_long);
}
