// A health-check target's HTTP response as the checker reads it
// (daemon/net/http_status.hpp): the bytes received so far, status line first.
//
// Properties: good means a 100-599 code read from "HTTP/1.x NNN"; need_more
// only while no line has ended and fewer than kMaxStatusLine bytes arrived;
// a verdict on a complete line does not change when more bytes arrive; and
// every prefix of the input is need_more or has the same verdict (the
// checker parses each time a read adds bytes).
#include "net/http_status.hpp"
#include "fuzz.hpp"

using namespace regfs;
using regfs::net::HttpStatus;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in = fuzz::text(data, size);
  const HttpStatus s = net::parse_status_line(in);
  switch (s.state) {
    case HttpStatus::State::good:
      FUZZ_CHECK(s.code >= 100 && s.code <= 599);
      FUZZ_CHECK(in.starts_with("HTTP/1."));
      FUZZ_CHECK(in.find('\n') < net::kMaxStatusLine);
      break;
    case HttpStatus::State::need_more:
      FUZZ_CHECK(in.find('\n') == std::string_view::npos);
      FUZZ_CHECK(in.size() < net::kMaxStatusLine);
      FUZZ_CHECK(s.code == 0);
      break;
    case HttpStatus::State::bad:
      FUZZ_CHECK(s.code == 0);
      break;
  }
  // Arriving in two pieces: the first piece alone is undecided, or decided as the whole.
  const std::size_t cut = size == 0 ? 0 : data[0] % (size + 1);
  const HttpStatus head = net::parse_status_line(in.substr(0, cut));
  if (head.state != HttpStatus::State::need_more) {
    FUZZ_CHECK(head.state == s.state && head.code == s.code);
  }
  return 0;
}
