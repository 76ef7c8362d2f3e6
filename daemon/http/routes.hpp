// What the HTTP face answers to a request, decided from its method, target
// and Authorization header alone. Pure: the connection (server.cpp) reads the
// request, asks decide(), and writes what it says.
#pragma once

#include <string>
#include <string_view>

namespace regfs::http {

enum class Route {
  page,     // GET /: the embedded page
  status,   // GET /v1/status: .status.json
  events,   // GET /v1/events: the change stream as Server-Sent Events
  metrics,  // GET /metrics: .metrics
  health,   // GET /v1/health: 200 while the daemon serves, 503 while it stops
  refused,  // an error answer: `code` and `reason`
};

struct Decision {
  Route route = Route::refused;
  int code = 200;      // 200, or the error: 400, 401, 404, 405
  std::string reason;  // the error's one-line text for the body
};

// `token` empty: no token is asked for. With a token, every route but the page
// (static, holds no data) and the health answer (what a container health
// check reads) needs "Authorization: Bearer TOKEN". Only GET and HEAD; the
// query string is ignored.
Decision decide(std::string_view method, std::string_view target, std::string_view authorization,
                const std::string& token);

// Whether `authorization` is "Bearer TOKEN" for this token (the scheme's case
// ignored), compared in time that does not depend on where they differ.
bool bearer_matches(std::string_view authorization, const std::string& token);

// A token file's token: its first line without the line end. Empty when the
// line is empty or holds bytes outside printable ASCII but for none.
std::string token_from_file_text(std::string_view text);

// One Server-Sent Event carrying one JSON line (without its newline).
std::string sse_event(std::string_view json_line);

}  // namespace regfs::http
