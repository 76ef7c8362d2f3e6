#include <catch2/catch.hpp>

#include "http/routes.hpp"

using namespace regfs::http;

TEST_CASE("http routes: each path, GET and HEAD only, unknown paths 404") {
  CHECK(decide("GET", "/", "", "").route == Route::page);
  CHECK(decide("GET", "/v1/status", "", "").route == Route::status);
  CHECK(decide("GET", "/v1/events", "", "").route == Route::events);
  CHECK(decide("GET", "/metrics", "", "").route == Route::metrics);
  CHECK(decide("GET", "/v1/health", "", "").route == Route::health);
  CHECK(decide("HEAD", "/v1/status?x=1", "", "").route == Route::status);
  CHECK(decide("GET", "/v1/nothing", "", "").code == 404);
  CHECK(decide("GET", "/v1/status/", "", "").code == 404);
  CHECK(decide("POST", "/v1/status", "", "").code == 405);
  CHECK(decide("DELETE", "/", "", "").code == 405);
}

TEST_CASE("http routes: with a token, data needs it; the page and health do not") {
  const std::string token = "0123456789abcdef";
  for (const char* path : {"/v1/status", "/v1/events", "/metrics"}) {
    INFO(path);
    CHECK(decide("GET", path, "", token).code == 401);
    CHECK(decide("GET", path, "Bearer 0123456789abcdeX", token).code == 401);
    CHECK(decide("GET", path, "Bearer 0123456789abcde", token).code == 401);
    CHECK(decide("GET", path, "Bearer 0123456789abcdef0", token).code == 401);
    CHECK(decide("GET", path, "Basic 0123456789abcdef", token).code == 401);
    CHECK(decide("GET", path, "Bearer 0123456789abcdef", token).code == 200);
    CHECK(decide("GET", path, "bearer 0123456789abcdef", token).code == 200);
  }
  CHECK(decide("GET", "/", "", token).route == Route::page);
  CHECK(decide("GET", "/v1/health", "", token).route == Route::health);
  CHECK_FALSE(bearer_matches("Bearer ", ""));
}

TEST_CASE("http token files: the first line, printable, no blanks") {
  CHECK(token_from_file_text("abc\n") == "abc");
  CHECK(token_from_file_text("abc\r\nmore\n") == "abc");
  CHECK(token_from_file_text("abc") == "abc");
  CHECK(token_from_file_text("a b\n").empty());
  CHECK(token_from_file_text("\nabc\n").empty());
  CHECK(token_from_file_text("ab\x01\n").empty());
}

TEST_CASE("server-sent events: one data line per JSON line") {
  CHECK(sse_event(R"({"a":1})") == "data: {\"a\":1}\n\n");
  CHECK(sse_event("x\ny") == "data: x y\n\n");
}
