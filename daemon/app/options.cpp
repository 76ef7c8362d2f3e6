#include "options.hpp"

#include <arpa/inet.h>
#include <charconv>
#include <map>

#include "core/host_port.hpp"
#include "core/instance.hpp"

namespace regfs {
namespace {

Error usage_error(std::string what) { return Error{Errc::invalid_line, std::move(what)}; }

// `text` quoted for an error message: bytes outside printable ASCII as \xNN,
// so that a terminal shows what was given, and cut at 80.
std::string shown(std::string_view text) {
  static const char* hex = "0123456789abcdef";
  std::string out = "'";
  for (const char c : text.substr(0, 80)) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f) {
      out += c;
    } else {
      out += "\\x";
      out += hex[u >> 4];
      out += hex[u & 15];
    }
  }
  return out + (text.size() > 80 ? "...'" : "'");
}

bool is_ip_literal(const std::string& host) {
  unsigned char buf[16];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

enum class Kind { text, duration, flag, list };

struct Spec {
  const char* env;
  Kind kind;
};

const std::map<std::string, Spec, std::less<>>& specs() {
  static const std::map<std::string, Spec, std::less<>> table = {
      {"--mount", {"REGFS_MOUNT", Kind::text}},
      {"--state-dir", {"REGFS_STATE_DIR", Kind::text}},
      {"--node-name", {"REGFS_NODE_NAME", Kind::text}},
      {"--bind", {"REGFS_BIND", Kind::text}},
      {"--advertise", {"REGFS_ADVERTISE", Kind::text}},
      {"--join", {"REGFS_JOIN", Kind::list}},
      {"--key-file", {"REGFS_KEY_FILE", Kind::text}},
      {"--insecure", {"REGFS_INSECURE", Kind::flag}},
      {"--writers", {"REGFS_WRITERS", Kind::text}},
      {"--fresh", {"REGFS_FRESH", Kind::duration}},
      {"--read-timeout", {"REGFS_READ_TIMEOUT", Kind::duration}},
      {"--wait-timeout", {"REGFS_WAIT_TIMEOUT", Kind::duration}},
      {"--reap-after", {"REGFS_REAP_AFTER", Kind::duration}},
      {"--recheck-after", {"REGFS_RECHECK_AFTER", Kind::duration}},
      {"--check-interval", {"REGFS_CHECK_INTERVAL", Kind::duration}},
      {"--busy-poll", {"REGFS_BUSY_POLL", Kind::duration}},
      {"--stall-timeout", {"REGFS_STALL_TIMEOUT", Kind::duration}},
      {"--store", {"REGFS_STORE", Kind::text}},
      {"--store-prefix", {"REGFS_STORE_PREFIX", Kind::text}},
      {"--store-timeout", {"REGFS_STORE_TIMEOUT", Kind::duration}},
      {"--store-ttl", {"REGFS_STORE_TTL", Kind::duration}},
      {"--store-user", {"REGFS_STORE_USER", Kind::text}},
      {"--store-password-file", {"REGFS_STORE_PASSWORD_FILE", Kind::text}},
      {"--store-ca", {"REGFS_STORE_CA", Kind::text}},
      {"--store-cert", {"REGFS_STORE_CERT", Kind::text}},
      {"--store-key", {"REGFS_STORE_KEY", Kind::text}},
      {"--mirror", {"REGFS_MIRROR", Kind::text}},
      {"--no-mount", {"REGFS_NO_MOUNT", Kind::flag}},
      {"--log-level", {"REGFS_LOG_LEVEL", Kind::text}},
      {"--http", {"REGFS_HTTP", Kind::text}},
      {"--http-token-file", {"REGFS_HTTP_TOKEN_FILE", Kind::text}},
      {"--http-max-clients", {"REGFS_HTTP_MAX_CLIENTS", Kind::text}},
      {"--http-max-streams", {"REGFS_HTTP_MAX_STREAMS", Kind::text}},
  };
  return table;
}

Status assign(Options& o, std::string_view name, const std::string& value) {
  auto duration = [&](Duration& out) -> Status {
    auto d = parse_duration(value);
    if (!d) return usage_error(std::string(name) + ": " + d.error().detail);
    out = *d;
    return ok_status();
  };
  auto flag = [&](bool& out) -> Status {
    if (value == "1" || value == "true" || value == "yes") {
      out = true;
    } else if (value == "0" || value == "false" || value == "no" || value.empty()) {
      out = false;
    } else {
      return usage_error(std::string(name) + ": expected 1/0, true/false or yes/no");
    }
    return ok_status();
  };
  auto count = [&](std::size_t& out, std::size_t max) -> Status {
    std::size_t n = 0;
    const auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
    if (ec != std::errc{} || ptr != value.data() + value.size() || n < 1 || n > max) {
      return usage_error(std::string(name) + ": " + shown(value) + " is not a number from 1 to " +
                         std::to_string(max));
    }
    out = n;
    return ok_status();
  };
  if (name == "--http") {
    if (value.empty()) {
      o.http.clear();  // REGFS_HTTP= leaves it off
      return ok_status();
    }
    auto addr = parse_http_address(value);
    if (!addr) return usage_error("--http: " + addr.error().detail);
    o.http = *addr;
    return ok_status();
  }
  if (name == "--http-token-file") o.http_token_file = value;
  if (name == "--http-max-clients") return count(o.http_max_clients, 4096);
  if (name == "--http-max-streams") return count(o.http_max_streams, 4096);
  if (name == "--mount") o.mount = value;
  if (name == "--state-dir") o.state_dir = value;
  if (name == "--node-name") o.node_name = value;
  if (name == "--bind") o.bind = value;
  if (name == "--advertise") o.advertise = value;
  if (name == "--key-file") o.key_file = value;
  if (name == "--writers") o.writers = value;
  if (name == "--mirror") o.mirror = value;
  if (name == "--log-level") o.log_level = value;
  if (name == "--join") o.join.push_back(value);
  if (name == "--store") return parse_store(value, o);
  if (name == "--store-prefix") o.store_prefix = value;
  if (name == "--store-timeout") return duration(o.store_timeout);
  if (name == "--store-ttl") return duration(o.store_ttl);
  if (name == "--store-user") o.store_user = value;
  if (name == "--store-password-file") o.store_password_file = value;
  if (name == "--store-ca") o.store_ca = value;
  if (name == "--store-cert") o.store_cert = value;
  if (name == "--store-key") o.store_key = value;
  if (name == "--insecure") return flag(o.insecure);
  if (name == "--no-mount") return flag(o.no_mount);
  if (name == "--fresh") return duration(o.fresh);
  if (name == "--read-timeout") return duration(o.read_timeout);
  if (name == "--wait-timeout") return duration(o.wait_timeout);
  if (name == "--reap-after") return duration(o.reap_after);
  if (name == "--recheck-after") return duration(o.recheck_after);
  if (name == "--check-interval") return duration(o.check_interval);
  if (name == "--busy-poll") return duration(o.busy_poll);
  if (name == "--stall-timeout") return duration(o.stall_timeout);
  return ok_status();
}

Status validate(const Options& o) {
  static const char* levels[] = {"trace", "debug", "info", "warn", "error"};
  bool level_ok = false;
  for (const char* l : levels) level_ok = level_ok || o.log_level == l;
  if (!level_ok) return usage_error("--log-level: expected trace, debug, info, warn or error");
  if (o.mount.empty() && !o.no_mount) return usage_error("--mount: empty path");
  if (o.state_dir.empty()) return usage_error("--state-dir: empty path");
  if (!o.node_name.empty() && !valid_node_name(o.node_name)) {
    return usage_error("--node-name: " + shown(o.node_name) + " is not a node name (1-" +
                       std::to_string(kMaxNodeName) +
                       " characters of A-Z a-z 0-9 . _ -, not starting with '.')");
  }
  if (!o.advertise.empty() && !valid_host(o.advertise)) {
    return usage_error("--advertise: " + shown(o.advertise) +
                       " is not an IPv4 address, an IPv6 address (without brackets) or a host name");
  }
  if (o.no_mount && o.mirror.empty()) return usage_error("--no-mount needs --mirror DIR");
  if (o.read_timeout <= Duration::zero()) return usage_error("--read-timeout: must be positive");
  if (o.wait_timeout <= Duration::zero()) return usage_error("--wait-timeout: must be positive");
  if (o.check_interval <= Duration::zero()) return usage_error("--check-interval: must be positive");
  if (!valid_store_prefix(o.store_prefix)) {
    return usage_error("--store-prefix: " + shown(o.store_prefix) +
                       " is not a key prefix (3-128 printable characters without blanks, starting"
                       " and ending with '/')");
  }
  if (o.store_timeout < milliseconds(100) || o.store_timeout > seconds(60)) {
    return usage_error("--store-timeout: between 100ms and 60s");
  }
  if (o.store == "etcd" && o.stall_timeout != Duration::zero() && o.store_timeout * 2 > o.stall_timeout) {
    // A write waits for the store on the loop: it must not look like a stall.
    return usage_error("--store-timeout: at most half of --stall-timeout");
  }
  if (o.store_ttl < seconds(2) || o.store_ttl > seconds(3600) ||
      o.store_ttl != std::chrono::duration_cast<std::chrono::seconds>(o.store_ttl)) {
    return usage_error("--store-ttl: whole seconds between 2s and 1h");
  }
  if (o.store_user.empty() != o.store_password_file.empty()) {
    return usage_error("--store-user and --store-password-file go together");
  }
  if (!o.store_user.empty()) {
    bool printable = o.store_user.size() <= 128;
    for (const char c : o.store_user) printable = printable && c > 0x20 && c < 0x7f;
    if (!printable) {
      return usage_error("--store-user: " + shown(o.store_user) +
                         " is not a user name (1-128 printable characters without blanks)");
    }
  }
  const bool tls_files = !o.store_ca.empty() || !o.store_cert.empty() || !o.store_key.empty();
  if (tls_files && !o.store_tls) {
    // Certificates given with a plain store would mean registrations sent in the clear.
    return usage_error("--store-ca, --store-cert and --store-key need --store etcds://HOST:PORT[,...]");
  }
  if (o.store_cert.empty() != o.store_key.empty()) {
    return usage_error("--store-cert and --store-key go together");
  }
  if (o.http.empty() && !o.http_token_file.empty()) {
    return usage_error("--http-token-file needs --http ADDR:PORT");
  }
  if (o.http_max_streams > o.http_max_clients) {
    return usage_error("--http-max-streams: at most --http-max-clients (" +
                       std::to_string(o.http_max_clients) + ")");
  }
  if (o.busy_poll > milliseconds(1)) return usage_error("--busy-poll: at most 1ms (0 turns it off)");
  if (o.stall_timeout != Duration::zero() && o.stall_timeout < milliseconds(100)) {
    return usage_error("--stall-timeout: at least 100ms (0 turns the watchdog off)");
  }
  return ok_status();
}

}  // namespace

bool valid_store_prefix(std::string_view prefix) {
  if (prefix.size() < 3 || prefix.size() > 128 || prefix.front() != '/' || prefix.back() != '/') {
    return false;
  }
  for (const char c : prefix) {
    if (c <= 0x20 || c >= 0x7f) return false;
  }
  return true;
}

Result<std::string> parse_http_address(std::string_view text) {
  std::string spelled(text);
  const bool bare = !text.empty() && text.find_first_not_of("0123456789") == std::string_view::npos;
  if (bare) spelled = ":" + spelled;
  auto hp = HostPort::parse(spelled);
  if (!hp) {
    return usage_error(shown(text) + " is not PORT, ADDR:PORT or [IPV6]:PORT (port 0-65535)");
  }
  if (hp->host.empty()) hp->host = "127.0.0.1";  // a bare port: loopback
  if (!is_ip_literal(hp->host)) {
    return usage_error(shown(text) + ": the address must be an IPv4 or IPv6 address, not a name");
  }
  return hp->to_string();
}

Status parse_store(std::string_view url, Options& out) {
  if (url == "gossip") {
    out.store = "gossip";
    out.store_members.clear();
    out.store_tls = false;
    return ok_status();
  }
  if (url.starts_with("https://") || url.starts_with("http://")) {
    return usage_error("--store: " + shown(url) + ": give etcd://HOST:PORT[,...] for etcd over plain"
                       " HTTP, etcds://HOST:PORT[,...] for etcd over TLS");
  }
  const bool tls = url.starts_with("etcds://");
  const std::string_view scheme = tls ? "etcds://" : "etcd://";
  if (!url.starts_with(scheme)) {
    return usage_error("--store: " + shown(url) +
                       " is neither 'gossip' nor etcd://HOST:PORT[,HOST:PORT...] (etcds:// for TLS)");
  }
  std::vector<std::string> members;
  std::string_view rest = url.substr(scheme.size());
  if (rest.empty()) {
    return usage_error("--store: " + std::string(scheme) + " names no member (" + std::string(scheme) +
                       "HOST:PORT)");
  }
  while (true) {
    const auto comma = rest.find(',');
    const std::string_view item = rest.substr(0, comma);
    auto hp = HostPort::parse(item, 1);
    if (!hp || hp->host.empty() || (!valid_host(hp->host) && !hp->is_ipv6())) {
      return usage_error("--store: " + shown(item) + " is not HOST:PORT (port 1-65535)");
    }
    if (members.size() >= 16) return usage_error("--store: at most 16 etcd members");
    members.push_back(hp->to_string());
    if (comma == std::string_view::npos) break;
    rest = rest.substr(comma + 1);
  }
  out.store = "etcd";
  out.store_members = std::move(members);
  out.store_tls = tls;
  return ok_status();
}

Result<Duration> parse_duration(std::string_view text) {
  double value = 0;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || value < 0 || value > 1e7) {
    return usage_error("bad duration '" + std::string(text) + "' (e.g. 250ms, 2s, 1m)");
  }
  const std::string_view unit(ptr, static_cast<std::size_t>(text.data() + text.size() - ptr));
  double scale = 0;
  if (unit.empty() || unit == "s") scale = 1;
  if (unit == "ms") scale = 1e-3;
  if (unit == "us") scale = 1e-6;
  if (unit == "m") scale = 60;
  if (unit == "h") scale = 3600;
  if (scale == 0) return usage_error("bad duration unit in '" + std::string(text) + "'");
  // Checked before the conversion, which is undefined for what does not fit
  // (NaN passes the comparisons above; so does 1e7h, 3.6e19 ns).
  const double secs = value * scale;
  constexpr double kMaxSeconds = std::chrono::duration<double>(kMaxDuration).count();
  if (!(secs >= 0 && secs <= kMaxSeconds)) {
    return usage_error("duration '" + std::string(text) + "' out of range (at most 10^7 s)");
  }
  // Rounded, not truncated: 200us is 0.0002 s in floating point, a hair under.
  return std::chrono::round<Duration>(std::chrono::duration<double>(secs));
}

Result<Options> parse_options(const std::vector<std::string>& args, const EnvLookup& env) {
  Options o;
  for (const auto& [name, spec] : specs()) {
    const auto value = env(spec.env);
    if (!value) continue;
    if (spec.kind == Kind::list) {
      std::string_view rest = *value;
      while (!rest.empty()) {
        const auto comma = rest.find(',');
        const std::string item(rest.substr(0, comma));
        if (!item.empty()) o.join.push_back(item);
        rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
      }
      continue;
    }
    if (auto st = assign(o, name, *value); !st) {
      return usage_error(std::string(spec.env) + " (" + st.error().detail + ")");
    }
  }
  bool join_from_args = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string name = args[i];
    std::optional<std::string> inline_value;
    if (const auto eq = name.find('='); eq != std::string::npos && name.starts_with("--")) {
      inline_value = name.substr(eq + 1);
      name.resize(eq);
    }
    if (name == "-h" || name == "--help") {
      o.help = true;
      continue;
    }
    if (name == "--version") {
      o.version = true;
      continue;
    }
    const auto it = specs().find(name);
    if (it == specs().end()) return usage_error("unknown option '" + name + "'");
    std::string value;
    if (it->second.kind == Kind::flag) {
      value = inline_value.value_or("1");
    } else if (inline_value) {
      value = *inline_value;
    } else if (i + 1 < args.size()) {
      value = args[++i];
    } else {
      return usage_error(name + ": missing value");
    }
    if (it->second.kind == Kind::list && !join_from_args) {
      o.join.clear();  // the command line replaces the environment's list
      join_from_args = true;
    }
    if (auto st = assign(o, name, value); !st) return st.error();
  }
  if (auto st = validate(o); !st) return st.error();
  return o;
}

const char* options_usage() {
  return R"(usage: regfsd [options]
  --mount DIR                mountpoint (default /registry)            REGFS_MOUNT
  --state-dir DIR            own registrations, durable               REGFS_STATE_DIR
  --node-name NAME           unique node name (default: host name)    REGFS_NODE_NAME
  --bind ADDR:PORT           gossip address (default 127.0.0.1:7946)  REGFS_BIND
  --advertise ADDR           address peers and :port registrations use REGFS_ADVERTISE
  --join SOURCE              HOST:PORT, dns:NAME[:PORT], file:DIR     REGFS_JOIN
  --key-file FILE            keyring                                  REGFS_KEY_FILE
  --insecure                 allow no key on a non-loopback address   REGFS_INSECURE
  --writers GROUP            group allowed to register besides root   REGFS_WRITERS
  --fresh DURATION           freshness window (default 1s)            REGFS_FRESH
  --read-timeout DURATION    read deadline (default 1s)               REGFS_READ_TIMEOUT
  --wait-timeout DURATION    .wait/ timeout (default 30s)             REGFS_WAIT_TIMEOUT
  --reap-after DURATION      reap own failing instances (default 60s) REGFS_REAP_AFTER
  --recheck-after DURATION   a re-read checks the endpoint it was handed
                             if its verdict is older (100ms; 0: never) REGFS_RECHECK_AFTER
  --check-interval DURATION  owner's background checks (default 5s)   REGFS_CHECK_INTERVAL
  --busy-poll DURATION       poll for the next request (default 50us) REGFS_BUSY_POLL
  --stall-timeout DURATION   abort the mount if the loop stalls (5s)  REGFS_STALL_TIMEOUT
  --store URL                gossip (default), etcd://HOST:PORT[,...] REGFS_STORE
                             or etcds://HOST:PORT[,...] (TLS)
  --store-prefix PREFIX      etcd key prefix (default /regfs/)        REGFS_STORE_PREFIX
  --store-timeout DURATION   a write's deadline at etcd (default 2s)  REGFS_STORE_TIMEOUT
  --store-ttl DURATION       etcd lease time to live (default 10s)    REGFS_STORE_TTL
  --store-user NAME          etcd user (with --store-password-file)   REGFS_STORE_USER
  --store-password-file FILE etcd user's password, its first line     REGFS_STORE_PASSWORD_FILE
  --store-ca FILE            etcds://: CA of the members' certificates REGFS_STORE_CA
                             (default: the system's CAs)
  --store-cert FILE          etcds://: client certificate (PEM)       REGFS_STORE_CERT
  --store-key FILE           etcds://: the client certificate's key   REGFS_STORE_KEY
  --mirror DIR               also keep plain files in DIR             REGFS_MIRROR
  --no-mount                 with --mirror: no FUSE mount             REGFS_NO_MOUNT
  --log-level LEVEL          trace, debug, info, warn, error          REGFS_LOG_LEVEL
  --http ADDR:PORT           read-only page and HTTP API (default off) REGFS_HTTP
                             (a bare PORT is 127.0.0.1:PORT)
  --http-token-file FILE     its bearer token; needed beyond loopback REGFS_HTTP_TOKEN_FILE
  --http-max-clients N       open HTTP connections (default 256)      REGFS_HTTP_MAX_CLIENTS
  --http-max-streams N       open /v1/events streams (default 128)    REGFS_HTTP_MAX_STREAMS
  --version                  print the version and exit
  -h, --help                 print this and exit
)";
}

std::vector<std::pair<std::string, std::string>> option_names() {
  std::vector<std::pair<std::string, std::string>> out = {{"-h", ""}, {"--help", ""}, {"--version", ""}};
  for (const auto& [name, spec] : specs()) out.emplace_back(name, spec.env);
  return out;
}

}  // namespace regfs
