// The core's error model: operations return a value or an Error, never throw.
//
// Adapters map Error to their own world at one boundary (fs/errno_map.cpp maps
// to errno; the command line maps to messages and exit codes).
#pragma once

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace regfs {

enum class Errc {
  invalid_name,        // service name outside the allowed alphabet or length
  invalid_line,        // a registration line that does not parse
  line_too_long,       // a registration line over Limits::max_line
  too_many_instances,  // over Limits::max_instances_per_service
  too_many_services,   // over Limits::max_services_per_node
  not_found,           // nothing registered under that name
  not_owner,           // only other nodes hold instances of that service
  host_down,           // registered, but no instance passes its check
  timed_out,           // a wait ran out
  io,                  // the state directory could not be written
};

struct Error {
  Errc code;
  std::string detail;  // human-readable, for logs and the command line
};

const char* to_string(Errc code);

// A value or an Error. Deliberately small: C++20 has no std::expected.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  Result(Error error) : v_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() { assert(ok()); return std::get<0>(v_); }
  const T& value() const { assert(ok()); return std::get<0>(v_); }
  T& operator*() { return value(); }
  const T& operator*() const { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const { assert(!ok()); return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

// Result<void>: success or an Error.
struct Ok {};
using Status = Result<Ok>;
inline Status ok_status() { return Ok{}; }

}  // namespace regfs
