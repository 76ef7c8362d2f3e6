#include "errno_map.hpp"

#include <cerrno>

namespace regfs::fs {

int to_errno(Errc code) {
  switch (code) {
    case Errc::invalid_name: return EINVAL;
    case Errc::invalid_line: return EINVAL;
    case Errc::line_too_long: return EINVAL;
    case Errc::too_many_instances: return ENOSPC;
    case Errc::too_many_services: return ENOSPC;
    case Errc::not_found: return ENOENT;
    case Errc::not_owner: return EPERM;
    case Errc::host_down: return EHOSTDOWN;
    case Errc::timed_out: return ETIMEDOUT;
    case Errc::io: return EIO;
  }
  return EIO;
}

}  // namespace regfs::fs
