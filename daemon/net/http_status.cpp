#include "http_status.hpp"

namespace regfs::net {

HttpStatus parse_status_line(std::string_view received) {
  const auto eol = received.find('\n');
  if (eol == std::string_view::npos) {
    const bool too_long = received.size() >= kMaxStatusLine;
    return HttpStatus{too_long ? HttpStatus::State::bad : HttpStatus::State::need_more, 0};
  }
  if (eol >= kMaxStatusLine) return HttpStatus{HttpStatus::State::bad, 0};
  std::string_view line = received.substr(0, eol);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  // "HTTP/1.x SP 3DIGIT [SP reason]"
  if (!line.starts_with("HTTP/1.") || line.size() < 12 || line[8] != ' ') {
    return HttpStatus{HttpStatus::State::bad, 0};
  }
  int code = 0;
  for (std::size_t i = 9; i < 12; ++i) {
    if (line[i] < '0' || line[i] > '9') return HttpStatus{HttpStatus::State::bad, 0};
    code = code * 10 + (line[i] - '0');
  }
  if (line.size() > 12 && line[12] != ' ') return HttpStatus{HttpStatus::State::bad, 0};
  if (code < 100 || code > 599) return HttpStatus{HttpStatus::State::bad, 0};
  return HttpStatus{HttpStatus::State::good, code};
}

}  // namespace regfs::net
