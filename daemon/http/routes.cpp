#include "routes.hpp"

namespace regfs::http {

bool bearer_matches(std::string_view authorization, const std::string& token) {
  constexpr std::string_view kScheme = "bearer ";
  if (token.empty() || authorization.size() < kScheme.size()) return false;
  for (std::size_t i = 0; i < kScheme.size(); ++i) {
    const char c = authorization[i];
    if ((c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c) != kScheme[i]) return false;
  }
  const std::string_view given = authorization.substr(kScheme.size());
  // Every byte of the token is compared whatever the given text holds: the
  // time depends on the token's length only.
  unsigned char diff = given.size() == token.size() ? 0 : 1;
  for (std::size_t i = 0; i < token.size(); ++i) {
    const char g = i < given.size() ? given[i] : '\0';
    diff |= static_cast<unsigned char>(g ^ token[i]);
  }
  return diff == 0;
}

std::string token_from_file_text(std::string_view text) {
  std::string_view line = text.substr(0, text.find('\n'));
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  for (const char c : line) {
    if (c <= 0x20 || c >= 0x7f) return {};
  }
  return std::string(line);
}

Decision decide(std::string_view method, std::string_view target, std::string_view authorization,
                const std::string& token) {
  const std::string_view path = target.substr(0, target.find('?'));
  Route route = Route::refused;
  if (path == "/" || path == "/index.html") route = Route::page;
  if (path == "/v1/status") route = Route::status;
  if (path == "/v1/events") route = Route::events;
  if (path == "/metrics") route = Route::metrics;
  if (path == "/v1/health") route = Route::health;
  if (route == Route::refused) return {Route::refused, 404, "not found"};
  if (method != "GET" && method != "HEAD") return {Route::refused, 405, "only GET and HEAD"};
  const bool open = route == Route::page || route == Route::health;
  if (!open && !token.empty() && !bearer_matches(authorization, token)) {
    return {Route::refused, 401, "a bearer token is required (Authorization: Bearer TOKEN)"};
  }
  return {route, 200, {}};
}

std::string sse_event(std::string_view json_line) {
  std::string out;
  out.reserve(json_line.size() + 8);
  out += "data: ";
  // A JSON line holds no newline; one that did would end the event early.
  for (const char c : json_line) out += c == '\n' || c == '\r' ? ' ' : c;
  out += "\n\n";
  return out;
}

}  // namespace regfs::http
