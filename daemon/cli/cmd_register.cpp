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
  const int err = ctx.mirror.empty()
                      ? write_file(ctx.path(service), line + "\n", !replace)
                      : control_request(ctx, "WRITE " + service + (replace ? " replace\n" : " append\n") +
                                                 line + "\n");
  if (err != 0) return fail("register " + service, err);
  return kOk;
}

int cmd_deregister(const Context& ctx, const std::vector<std::string>& args) {
  if (args.size() != 1 || args[0].starts_with("-")) return fail_usage("usage: regfs deregister SERVICE");
  const int err = !ctx.mirror.empty()                         ? control_request(ctx, "REMOVE " + args[0] + "\n")
                  : ::unlink(ctx.path(args[0]).c_str()) != 0 ? errno
                                                             : 0;
  if (err != 0) return fail("deregister " + args[0], err);
  return kOk;
}

}  // namespace regfs::cli
