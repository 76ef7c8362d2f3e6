// regfsd's command line and environment (daemon/app/options.hpp), and
// durations on their own.
//
// Input: NUL-separated items. The first holds the environment, one
// NAME=VALUE per line; the rest are the arguments. The whole input is also
// parsed as one duration. Properties: an accepted duration is within
// [0, kMaxDuration]; accepted options pass every rule the daemon relies on
// (docs/INTERFACES.md); parsing is a function of its input.
#include <map>
#include <string>
#include <vector>

#include "app/options.hpp"
#include "core/instance.hpp"
#include "fuzz.hpp"

using namespace regfs;

namespace {

void check_duration(Duration d) {
  FUZZ_CHECK(d >= Duration::zero());
  FUZZ_CHECK(d <= kMaxDuration);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in = fuzz::text(data, size);
  if (auto d = parse_duration(in)) check_duration(*d);

  std::vector<std::string> items;
  for (std::size_t at = 0; at <= in.size();) {
    const auto nul = in.find('\0', at);
    const auto end = nul == std::string_view::npos ? in.size() : nul;
    items.emplace_back(in.substr(at, end - at));
    at = end + 1;
  }
  std::map<std::string, std::string> env;
  std::string_view lines = items.front();
  while (!lines.empty()) {
    const auto nl = lines.find('\n');
    const std::string_view line = lines.substr(0, nl);
    lines = nl == std::string_view::npos ? std::string_view{} : lines.substr(nl + 1);
    if (const auto eq = line.find('='); eq != std::string_view::npos) {
      env[std::string(line.substr(0, eq))] = std::string(line.substr(eq + 1));
    }
  }
  const std::vector<std::string> args(items.begin() + 1, items.end());
  const EnvLookup lookup = [&env](const char* name) -> std::optional<std::string> {
    const auto it = env.find(name);
    if (it == env.end()) return std::nullopt;
    return it->second;
  };
  auto o = parse_options(args, lookup);
  auto again = parse_options(args, lookup);
  FUZZ_CHECK(o.ok() == again.ok());
  if (!o) {
    FUZZ_CHECK(!o.error().detail.empty());
    return 0;
  }
  for (const Duration d : {o->fresh, o->read_timeout, o->wait_timeout, o->reap_after,
                           o->check_interval, o->busy_poll, o->stall_timeout}) {
    check_duration(d);
  }
  FUZZ_CHECK(o->read_timeout > Duration::zero());
  FUZZ_CHECK(o->wait_timeout > Duration::zero());
  FUZZ_CHECK(o->check_interval > Duration::zero());
  FUZZ_CHECK(o->busy_poll <= milliseconds(1));
  FUZZ_CHECK(o->stall_timeout == Duration::zero() || o->stall_timeout >= milliseconds(100));
  FUZZ_CHECK(o->node_name.empty() || valid_node_name(o->node_name));
  FUZZ_CHECK(o->advertise.empty() || valid_host(o->advertise));
  FUZZ_CHECK(!o->state_dir.empty());
  FUZZ_CHECK(!o->mount.empty() || o->no_mount);
  FUZZ_CHECK(!o->no_mount || !o->mirror.empty());
  FUZZ_CHECK(o->log_level == "trace" || o->log_level == "debug" || o->log_level == "info" ||
             o->log_level == "warn" || o->log_level == "error");
  // The store: gossip with no members, or etcd with 1-16; TLS files only with etcds://.
  FUZZ_CHECK(o->store == "gossip" || o->store == "etcd");
  FUZZ_CHECK(o->store == "etcd" ? !o->store_members.empty() && o->store_members.size() <= 16
                                : o->store_members.empty() && !o->store_tls);
  FUZZ_CHECK(o->store_tls || (o->store_ca.empty() && o->store_cert.empty() && o->store_key.empty()));
  FUZZ_CHECK(o->store_cert.empty() == o->store_key.empty());
  FUZZ_CHECK(o->fresh == again->fresh && o->join == again->join && o->mount == again->mount);
  FUZZ_CHECK(o->store_members == again->store_members && o->store_tls == again->store_tls);
  return 0;
}
