// regfsd's options: command line over environment over defaults
// (docs/INTERFACES.md has the table). Pure: the environment comes in as a
// lookup function.
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/result.hpp"
#include "core/time.hpp"

namespace regfs {

struct Options {
  std::string mount = "/registry";
  std::string state_dir = "/var/lib/regfs";
  std::string node_name;  // empty: the host name
  std::string bind = "127.0.0.1:7946";
  std::string advertise;  // empty: found from the interfaces
  std::vector<std::string> join;
  std::string key_file;
  bool insecure = false;
  std::string writers;  // group name
  Duration fresh = seconds(1);
  Duration read_timeout = seconds(1);
  Duration wait_timeout = seconds(30);
  Duration reap_after = seconds(60);
  Duration recheck_after = milliseconds(100);  // zero: re-reads are plain reads
  Duration check_interval = seconds(5);
  Duration busy_poll = microseconds(50);  // see fs/session.hpp
  Duration stall_timeout = seconds(5);    // see fs/watchdog.hpp; zero: no watchdog
  // --store: "gossip", or etcd with its members' HOST:PORT (store_members).
  std::string store = "gossip";
  std::vector<std::string> store_members;
  std::string store_prefix = "/regfs/";
  Duration store_timeout = seconds(2);  // a write's deadline at the store
  Duration store_ttl = seconds(10);     // the etcd lease's time to live
  std::string store_user;               // etcd authentication; empty: none
  std::string store_password_file;
  bool store_tls = false;               // etcds://: TLS to every member
  std::string store_ca;                 // PEM CA file; empty: the system's CAs
  std::string store_cert;               // PEM client certificate and its key; empty: none
  std::string store_key;
  std::string mirror;
  bool no_mount = false;
  // --http: the read-only HTTP face (daemon/http), "host:port" once parsed
  // (a bare port is loopback); empty: off.
  std::string http;
  std::string http_token_file;  // bearer token, the file's first line
  std::size_t http_max_clients = 256;  // open connections, streams included
  std::size_t http_max_streams = 128;  // open /v1/events streams
  std::string log_level = "info";
  bool help = false;
  bool version = false;
};

using EnvLookup = std::function<std::optional<std::string>(const char* name)>;

// Parses argv (without argv[0]) over the environment. Errors name the option.
Result<Options> parse_options(const std::vector<std::string>& args, const EnvLookup& env);

// "250ms", "2s", "1m", "1h"; a bare number is seconds. At most
// kMaxDuration (10^7 s, about 115 days), so that any duration fits the
// nanosecond clock with room to add it to an instant.
inline constexpr Duration kMaxDuration = seconds(10'000'000);
Result<Duration> parse_duration(std::string_view text);

// A --store value: "gossip", "etcd://HOST:PORT[,HOST:PORT...]" (etcd's JSON
// gateway over plain HTTP) or "etcds://HOST:PORT[,...]" (the same over TLS).
// Sets `store`, `store_members` and `store_tls`.
Status parse_store(std::string_view url, Options& out);
// A --http value: PORT or :PORT (loopback), IPV4:PORT, [IPV6]:PORT; the
// host an IP address, not a name. Returns "host:port" (IPv6 bracketed).
Result<std::string> parse_http_address(std::string_view text);

// A --store-prefix: 3-128 printable ASCII bytes without blanks, starting and ending with '/'.
bool valid_store_prefix(std::string_view prefix);

const char* options_usage();

// Every option regfsd takes, with its environment variable where it has one
// (empty for -h, --help and --version): what options_usage() must list.
std::vector<std::pair<std::string, std::string>> option_names();

}  // namespace regfs
