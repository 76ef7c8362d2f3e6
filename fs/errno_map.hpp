// The one boundary where core errors become errno values.
#pragma once

#include "core/result.hpp"

namespace regfs::fs {

int to_errno(Errc code);

}  // namespace regfs::fs
