// Parsing the status line of an HTTP response. Pure and bounds-checked.
#pragma once

#include <string_view>

namespace regfs::net {

struct HttpStatus {
  enum class State { good, bad, need_more };
  State state = State::need_more;
  int code = 0;  // with good: 100-599
};

// Looks at the first bytes of a response ("HTTP/1.1 200 OK\r\n..."). need_more
// while the status line is incomplete and shorter than kMaxStatusLine.
inline constexpr std::size_t kMaxStatusLine = 1024;
HttpStatus parse_status_line(std::string_view received);

}  // namespace regfs::net
