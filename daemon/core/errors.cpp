#include "result.hpp"

namespace regfs {

const char* to_string(Errc code) {
  switch (code) {
    case Errc::invalid_name: return "invalid service name";
    case Errc::invalid_line: return "invalid registration line";
    case Errc::line_too_long: return "registration too long";
    case Errc::too_many_instances: return "too many instances";
    case Errc::too_many_services: return "too many services";
    case Errc::not_found: return "not registered";
    case Errc::not_owner: return "instances belong to other nodes";
    case Errc::host_down: return "no healthy instance";
    case Errc::timed_out: return "timed out";
    case Errc::io: return "i/o error";
  }
  return "unknown error";
}

}  // namespace regfs
