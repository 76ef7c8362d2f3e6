// regfs: the command line for the registry mounted by regfsd.
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <sys/stat.h>

#include "cli.hpp"

namespace {

const char* kHelp = R"(usage: regfs [--mount DIR | --mirror DIR] COMMAND [ARGS]
  get SERVICE [--all] [--wait SECONDS]     print a healthy endpoint (--all: every one)
  register SERVICE ENDPOINT [--check CHECK] [--replace]
                                           add an instance owned by this node
  deregister SERVICE                       remove this node's instances
  status [--json]                          the registry as this node sees it
  members                                  the cluster's members
  keygen                                   print a new cluster key
  run --name SERVICE [--port PORT|auto] [--check CHECK]
      [--requires SVC[,SVC...] [--requires-timeout SECONDS]] -- COMMAND...
                                           run, register, deregister on exit
  watch SERVICE [--all] [-- COMMAND...]    print the answer now and at every change, or
                                           run COMMAND with it in $REGFS_ENDPOINT(S)
  template [--once] [--wait MIN[:MAX]] IN:OUT[:COMMAND]...
                                           render Mustache templates IN to OUT at every
                                           change; run COMMAND when OUT changed
The mount is --mount, else $REGFS_MOUNT, else /registry. In Fargate mode (no mount),
--mirror DIR or $REGFS_MIRROR names the daemon's mirror directory. Exit codes: 0 ok, 2 usage,
3 not registered, 4 no healthy instance, 5 timed out, 6 permission denied,
7 invalid input, 8 no daemon, 1 other.
)";

}  // namespace

int main(int argc, char** argv) {
  using namespace regfs::cli;
  Context ctx;
  const char* env = std::getenv("REGFS_MOUNT");
  ctx.mount = env != nullptr && *env != '\0' ? env : "/registry";
  if (const char* m = std::getenv("REGFS_MIRROR"); m != nullptr) ctx.mirror = m;

  int i = 1;
  for (; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--mount" && i + 1 < argc) {
      ctx.mount = argv[++i];
    } else if (a.starts_with("--mount=")) {
      ctx.mount = a.substr(8);
    } else if (a == "--mirror" && i + 1 < argc) {
      ctx.mirror = argv[++i];
    } else if (a == "-h" || a == "--help" || a == "help") {
      std::cout << kHelp;
      return kOk;
    } else if (a == "--version") {
      std::cout << "regfs " REGFS_VERSION "\n";
      return kOk;
    } else {
      break;
    }
  }
  if (i >= argc) {
    std::cerr << kHelp;
    return kUsage;
  }
  const std::string command = argv[i];
  const std::vector<std::string> args(argv + i + 1, argv + argc);
  static const std::map<std::string, int (*)(const Context&, const std::vector<std::string>&)>
      commands = {{"get", cmd_get},         {"register", cmd_register}, {"deregister", cmd_deregister},
                  {"status", cmd_status},   {"members", cmd_members},   {"keygen", cmd_keygen},
                  {"run", cmd_run},         {"watch", cmd_watch},       {"template", cmd_template}};
  const auto it = commands.find(command);
  if (it == commands.end()) return fail_usage("unknown command '" + command + "' (regfs help)");
  if (!ctx.mirror.empty()) {
    if (command == "status" || command == "members" || command == "run" || command == "watch" ||
        command == "template") {
      return fail_usage(command + " needs the mount; in Fargate mode use get, register, deregister",
                        kError);
    }
  } else if (command != "keygen") {
    struct stat st{};
    if (::stat((ctx.mount + "/.metrics").c_str(), &st) != 0) {
      std::cerr << "regfs: no regfs daemon at " << ctx.mount << ": " << std::strerror(errno)
                << "\n";
      return kNoDaemon;
    }
  }
  return it->second(ctx, args);
}
