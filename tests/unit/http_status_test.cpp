#include <catch2/catch.hpp>
#include <string>

#include "net/http_status.hpp"

using regfs::net::HttpStatus;
using regfs::net::parse_status_line;

TEST_CASE("status lines") {
  CHECK(parse_status_line("HTTP/1.1 200 OK\r\n").code == 200);
  CHECK(parse_status_line("HTTP/1.0 301 Moved\r\nLocation: /\r\n").code == 301);
  CHECK(parse_status_line("HTTP/1.1 503\r\n").code == 503);
  CHECK(parse_status_line("HTTP/1.1 404 Not Found\n").state == HttpStatus::State::good);
  CHECK(parse_status_line("HTTP/1.1 20").state == HttpStatus::State::need_more);
  CHECK(parse_status_line("").state == HttpStatus::State::need_more);
  for (const char* bad : {"HTTP/2 200 OK\r\n", "SSH-2.0-OpenSSH\r\n", "HTTP/1.1 2x0 OK\r\n",
                          "HTTP/1.1 999 What\r\n", "HTTP/1.1 200OK\r\n", "HTTP/1.1  200\r\n",
                          "\r\n", "HTTP/1.1 099 Low\r\n"}) {
    INFO(bad);
    CHECK(parse_status_line(bad).state == HttpStatus::State::bad);
  }
  CHECK(parse_status_line(std::string(2000, 'a')).state == HttpStatus::State::bad);
  CHECK(parse_status_line(std::string(1023, 'a')).state == HttpStatus::State::need_more);
}

TEST_CASE("random bytes never crash the status parser") {
  std::uint64_t x = 88172645463325252ULL;
  for (int i = 0; i < 20000; ++i) {
    std::string s(x % 40, '\0');
    for (char& c : s) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      c = "HTTP/1. 0123456789\r\nOK"[x % 22];
    }
    const auto st = parse_status_line(s);
    if (st.state == HttpStatus::State::good) CHECK((st.code >= 100 && st.code <= 599));
  }
}
