#include <catch2/catch.hpp>
#include <map>
#include <string>
#include <vector>

#include "advertise.hpp"
#include "options.hpp"

using namespace regfs;

namespace {
Result<Options> parse(std::vector<std::string> args, std::map<std::string, std::string> env = {}) {
  return parse_options(args, [&](const char* name) -> std::optional<std::string> {
    const auto it = env.find(name);
    return it == env.end() ? std::nullopt : std::optional<std::string>(it->second);
  });
}
}  // namespace

TEST_CASE("defaults") {
  auto o = parse({});
  REQUIRE(o.ok());
  CHECK(o->mount == "/registry");
  CHECK(o->fresh == seconds(1));
  CHECK(o->wait_timeout == seconds(30));
  CHECK(o->reap_after == seconds(60));
  CHECK(o->busy_poll == microseconds(50));
}

TEST_CASE("the usage text lists every option and its environment variable") {
  const std::string usage = options_usage();
  for (const auto& [name, env] : option_names()) {
    INFO(name);
    // The name as a word of its own: "--http" must not pass on "--http-max-clients".
    const auto at = usage.find("  " + name + " ");
    const auto listed = at != std::string::npos || usage.find("  " + name + ", ") != std::string::npos ||
                        usage.find(", " + name + " ") != std::string::npos;
    CHECK(listed);
    if (!env.empty()) CHECK(usage.find(" " + env + "\n") != std::string::npos);
  }
}

TEST_CASE("busy poll: a duration up to 1ms, 0 turns it off") {
  CHECK(parse({"--busy-poll", "0"})->busy_poll == Duration::zero());
  CHECK(parse({}, {{"REGFS_BUSY_POLL", "200us"}})->busy_poll == microseconds(200));
  auto too_long = parse({"--busy-poll", "2ms"});
  REQUIRE_FALSE(too_long.ok());
  CHECK(too_long.error().detail.find("--busy-poll") != std::string::npos);
  CHECK_FALSE(parse({"--busy-poll", "soon"}).ok());
}

TEST_CASE("command line over environment") {
  auto o = parse({"--mount", "/m", "--fresh=250ms", "--join", "a:1", "--join", "b:2"},
                 {{"REGFS_MOUNT", "/env"}, {"REGFS_READ_TIMEOUT", "2s"}, {"REGFS_JOIN", "x:1,y:2"},
                  {"REGFS_INSECURE", "1"}});
  REQUIRE(o.ok());
  CHECK(o->mount == "/m");
  CHECK(o->fresh == milliseconds(250));
  CHECK(o->read_timeout == seconds(2));
  CHECK(o->join == std::vector<std::string>{"a:1", "b:2"});
  CHECK(o->insecure);
}

TEST_CASE("bad options name themselves") {
  auto unknown = parse({"--bogus"});
  REQUIRE_FALSE(unknown.ok());
  CHECK(unknown.error().detail.find("--bogus") != std::string::npos);
  auto missing = parse({"--mount"});
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().detail.find("--mount") != std::string::npos);
  auto bad_env = parse({}, {{"REGFS_FRESH", "soon"}});
  REQUIRE_FALSE(bad_env.ok());
  CHECK(bad_env.error().detail.find("REGFS_FRESH") != std::string::npos);
  CHECK_FALSE(parse({"--log-level", "loud"}).ok());
  CHECK_FALSE(parse({"--read-timeout", "0"}).ok());
  CHECK_FALSE(parse({"--no-mount"}).ok());
}

TEST_CASE("durations") {
  CHECK(*parse_duration("250ms") == milliseconds(250));
  CHECK(*parse_duration("2") == seconds(2));
  CHECK(*parse_duration("1.5s") == milliseconds(1500));
  CHECK(*parse_duration("1m") == seconds(60));
  CHECK(*parse_duration("0") == Duration::zero());
  CHECK(*parse_duration("200us") == microseconds(200));  // rounded, not truncated
  CHECK(*parse_duration("0.3s") == milliseconds(300));
  CHECK_FALSE(parse_duration("").ok());
  CHECK_FALSE(parse_duration("-1s").ok());
  CHECK_FALSE(parse_duration("5 s").ok());
  CHECK_FALSE(parse_duration("5d").ok());
}

// Found by tests/fuzz/options.cpp: converting these to nanoseconds overflowed
// (undefined behaviour; UBSan's float-cast-overflow).
TEST_CASE("durations beyond 10^7 s, NaN and infinity are refused") {
  CHECK(*parse_duration("1e7") == kMaxDuration);
  CHECK(*parse_duration("166666m") == std::chrono::minutes(166666));
  for (const char* bad : {"1e7h", "3000000h", "1e7m", "10000001", "nan", "nanms", "-nan", "inf", "infinity"}) {
    INFO(bad);
    CHECK_FALSE(parse_duration(bad).ok());
  }
  CHECK_FALSE(parse({"--fresh", "1e7h"}).ok());
}

TEST_CASE("node names and advertise addresses are checked") {
  CHECK(parse({"--node-name", "web-1.eu_west"}).ok());
  for (const std::string& bad :
       std::vector<std::string>{"n\xff", ".hidden", "a b", "a/b", std::string(129, 'x')}) {
    INFO(bad);
    auto o = parse({"--node-name", bad});
    REQUIRE_FALSE(o.ok());
    CHECK(o.error().detail.find("--node-name") != std::string::npos);
  }
  CHECK(parse({"--node-name", "n\xff"}).error().detail.find("'n\\xff'") != std::string::npos);
  CHECK_FALSE(parse({}, {{"REGFS_NODE_NAME", "bad name"}}).ok());
  CHECK(parse({"--advertise", "fe80::1"}).ok());
  CHECK(parse({"--advertise", "host.example"}).ok());
  CHECK_FALSE(parse({"--advertise", "[::1]"}).ok());
  CHECK_FALSE(parse({"--advertise", "10.0.0.1 x"}).ok());
}

TEST_CASE("stall timeout: 0 turns the watchdog off, else at least 100ms") {
  CHECK(parse({})->stall_timeout == seconds(5));
  CHECK(parse({"--stall-timeout", "0"})->stall_timeout == Duration::zero());
  CHECK(parse({"--stall-timeout", "250ms"})->stall_timeout == milliseconds(250));
  CHECK_FALSE(parse({"--stall-timeout", "50ms"}).ok());
}

TEST_CASE("the default advertise address skips link-local interfaces while another exists") {
  const auto ip = [](unsigned a, unsigned b, unsigned c, unsigned d) {
    return static_cast<std::uint32_t>(a << 24 | b << 16 | c << 8 | d);
  };
  const std::vector<std::uint32_t> ecs{ip(169, 254, 172, 2), ip(10, 0, 3, 17)};
  CHECK(pick_advertise_address(ecs) == "10.0.3.17");
  const std::vector<std::uint32_t> order{ip(10, 0, 3, 17), ip(192, 168, 1, 2)};
  CHECK(pick_advertise_address(order) == "10.0.3.17");
  const std::vector<std::uint32_t> only_link_local{ip(169, 254, 1, 1), ip(169, 254, 2, 2)};
  CHECK(pick_advertise_address(only_link_local) == "169.254.1.1");
  CHECK(pick_advertise_address({}) == "127.0.0.1");
}

TEST_CASE("store: gossip by default, etcd members from an etcd:// URL") {
  auto o = parse({});
  REQUIRE(o.ok());
  CHECK(o->store == "gossip");
  CHECK(o->store_prefix == "/regfs/");
  CHECK(o->store_ttl == seconds(10));
  o = parse({"--store", "etcd://127.0.0.1:2379,[::1]:2380,etcd-2.internal:2379"});
  REQUIRE(o.ok());
  CHECK(o->store == "etcd");
  CHECK(o->store_members ==
        std::vector<std::string>{"127.0.0.1:2379", "[::1]:2380", "etcd-2.internal:2379"});
  o = parse({}, {{"REGFS_STORE", "etcd://10.0.0.1:2379"}, {"REGFS_STORE_PREFIX", "/teams/a/"}});
  REQUIRE(o.ok());
  CHECK(o->store_members == std::vector<std::string>{"10.0.0.1:2379"});
  CHECK(o->store_prefix == "/teams/a/");
  o = parse({"--store", "gossip"}, {{"REGFS_STORE", "etcd://10.0.0.1:2379"}});
  REQUIRE(o.ok());
  CHECK(o->store == "gossip");
  CHECK(o->store_members.empty());
  CHECK_FALSE(o->store_tls);
}

TEST_CASE("store: etcds:// is etcd over TLS, with CA, certificate and key files") {
  auto o = parse({"--store", "etcds://127.0.0.1:2379,etcd-1.internal:2379"});
  REQUIRE(o.ok());
  CHECK(o->store == "etcd");
  CHECK(o->store_tls);
  CHECK(o->store_members == std::vector<std::string>{"127.0.0.1:2379", "etcd-1.internal:2379"});
  CHECK(o->store_ca.empty());
  o = parse({"--store-ca", "/etc/regfs/etcd-ca.pem"},
            {{"REGFS_STORE", "etcds://[::1]:2379"}, {"REGFS_STORE_CERT", "/etc/regfs/c.pem"},
             {"REGFS_STORE_KEY", "/etc/regfs/k.pem"}});
  REQUIRE(o.ok());
  CHECK(o->store_tls);
  CHECK(o->store_members == std::vector<std::string>{"[::1]:2379"});
  CHECK(o->store_ca == "/etc/regfs/etcd-ca.pem");
  CHECK(o->store_cert == "/etc/regfs/c.pem");
  CHECK(o->store_key == "/etc/regfs/k.pem");
  // The command line's plain etcd:// over the environment's etcds://: no TLS.
  o = parse({"--store", "etcd://127.0.0.1:2379"}, {{"REGFS_STORE", "etcds://127.0.0.1:2379"}});
  REQUIRE(o.ok());
  CHECK_FALSE(o->store_tls);
}

TEST_CASE("store: bad URLs, prefixes and durations fail with a clear error") {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--store", "consul://x:1"}, "neither 'gossip' nor etcd://"},
      {{"--store", "etcd://"}, "names no member"},
      {{"--store", "etcd://127.0.0.1"}, "is not HOST:PORT"},
      {{"--store", "etcd://127.0.0.1:0"}, "is not HOST:PORT"},
      {{"--store", "etcd://127.0.0.1:2379,"}, "is not HOST:PORT"},
      {{"--store", "etcd://127.0.0.1:2379/v3"}, "is not HOST:PORT"},
      {{"--store", "etcd://bad host:2379"}, "is not HOST:PORT"},
      {{"--store", "https://127.0.0.1:2379"}, "etcds://HOST:PORT[,...] for etcd over TLS"},
      {{"--store", "http://127.0.0.1:2379"}, "give etcd://HOST:PORT"},
      {{"--store", "etcds://"}, "etcds:// names no member"},
      {{"--store", "etcds://127.0.0.1"}, "is not HOST:PORT"},
      {{"--store", "etcds:/127.0.0.1:2379"}, "neither 'gossip' nor"},
      {{"--store", "etcd://127.0.0.1:2379", "--store-ca", "/ca.pem"}, "need --store etcds://"},
      {{"--store-cert", "/c.pem", "--store-key", "/k.pem"}, "need --store etcds://"},
      {{"--store", "etcds://127.0.0.1:2379", "--store-cert", "/c.pem"}, "go together"},
      {{"--store", "etcds://127.0.0.1:2379", "--store-key", "/k.pem"}, "go together"},
      {{"--store-prefix", "regfs"}, "--store-prefix"},
      {{"--store-prefix", "/a b/"}, "--store-prefix"},
      {{"--store-prefix", "/"}, "--store-prefix"},
      {{"--store-ttl", "1s"}, "--store-ttl"},
      {{"--store-ttl", "2.5s"}, "--store-ttl"},
      {{"--store-timeout", "10ms"}, "--store-timeout"},
      {{"--store-user", "root"}, "go together"},
      {{"--store-password-file", "/etc/regfs/etcd-password"}, "go together"},
      {{"--store-user", "a b", "--store-password-file", "/p"}, "is not a user name"},
      {{"--store", "etcd://127.0.0.1:2379", "--store-timeout", "3s"}, "at most half of --stall-timeout"},
  };
  for (const auto& [args, expected] : cases) {
    INFO(args[0] << " " << args[1] << (args.size() > 2 ? " " + args[2] : std::string()));
    const auto o = parse(args);
    REQUIRE_FALSE(o.ok());
    CHECK_THAT(o.error().detail, Catch::Matchers::Contains(expected));
  }
}

TEST_CASE("http: off by default; a bare port is loopback; addresses, not names") {
  auto o = parse({});
  REQUIRE(o.ok());
  CHECK(o->http.empty());
  CHECK(o->http_max_clients == 256);
  CHECK(o->http_max_streams == 128);
  CHECK(parse({"--http", "8080"})->http == "127.0.0.1:8080");
  CHECK(parse({"--http", ":8080"})->http == "127.0.0.1:8080");
  CHECK(parse({"--http", "0.0.0.0:80"})->http == "0.0.0.0:80");
  CHECK(parse({"--http", "[::1]:9000"})->http == "[::1]:9000");
  CHECK(parse({}, {{"REGFS_HTTP", "9001"}})->http == "127.0.0.1:9001");
  CHECK(parse({}, {{"REGFS_HTTP", ""}})->http.empty());
  auto limits = parse({"--http", "1", "--http-max-clients", "8", "--http-max-streams", "2"});
  REQUIRE(limits.ok());
  CHECK(limits->http_max_clients == 8);
  CHECK(limits->http_max_streams == 2);
}

TEST_CASE("http: bad values fail with an error naming the option") {
  auto error_of = [](std::vector<std::string> args) {
    auto o = parse(std::move(args));
    REQUIRE_FALSE(o.ok());
    return o.error().detail;
  };
  CHECK(error_of({"--http", "localhost:80"}).find("--http: 'localhost:80': the address must be") == 0);
  CHECK(error_of({"--http", "80000"}).find("--http: '80000' is not PORT") == 0);
  CHECK(error_of({"--http", "1.2.3.4"}).find("--http: '1.2.3.4' is not PORT") == 0);
  CHECK(error_of({"--http-token-file", "/t"}) == "--http-token-file needs --http ADDR:PORT");
  CHECK(error_of({"--http", "1", "--http-max-clients", "0"}).find("--http-max-clients: '0' is not") == 0);
  CHECK(error_of({"--http", "1", "--http-max-streams", "x"}).find("--http-max-streams: 'x' is not") == 0);
  CHECK(error_of({"--http", "1", "--http-max-clients", "4", "--http-max-streams", "5"}) ==
        "--http-max-streams: at most --http-max-clients (4)");
}
