// regfs register SERVICE ENDPOINT [--check CHECK] [--replace]
// regfs deregister SERVICE
#include <cerrno>
#include <iostream>
#include <unistd.h>

#include "cli.hpp"
#include "core/instance.hpp"

namespace regfs::cli {

int cmd_register(const Context& ctx, const std::vector<std::string>& args) {
  static const char* usage = "usage: regfs register SERVICE ENDPOINT [--check CHECK] [--replace]";
  std::vector<std::string> positional;
  std::string check;
  bool replace = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--check" && i + 1 < args.size()) {
      check = args[++i];
    } else if (args[i] == "--replace") {
      replace = true;
    } else if (!args[i].starts_with("--")) {
      positional.push_back(args[i]);
    } else {
      return fail_usage(usage);
    }
  }
  if (positional.size() != 2) return fail_usage(usage);
  const std::string& service = positional[0];
  if (!valid_service_name(service)) return fail_usage("register: invalid service name '" + service + "'", kInvalid);
  std::string line = positional[1] + (check.empty() ? "" : " check=" + check);
  // The daemon is the authority; parsing here only gives a better message.
  if (auto parsed = parse_line(line, Limits{}); !parsed) {
    return fail_usage("register: " + parsed.error().detail, kInvalid);
  }
  if (const int err = write_file(ctx.path(service), line + "\n", !replace)) {
    return fail("register " + service, err);
  }
  return kOk;
}

int cmd_deregister(const Context& ctx, const std::vector<std::string>& args) {
  if (args.size() != 1 || args[0].starts_with("-")) return fail_usage("usage: regfs deregister SERVICE");
  if (::unlink(ctx.path(args[0]).c_str()) != 0) return fail("deregister " + args[0], errno);
  return kOk;
}

}  // namespace regfs::cli
