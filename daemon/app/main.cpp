// regfsd: one daemon per task. Mounts the registry and serves it until
// SIGTERM or SIGINT, then unmounts cleanly.
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <csignal>
#include <functional>
#include <optional>
#include <random>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <grp.h>
#include <iostream>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include "advertise.hpp"
#include "core/host_port.hpp"
#include "cluster_driver.hpp"
#include "etcd_store.hpp"
#include "tls.hpp"
#include "peer_finder.hpp"
#include "control.hpp"
#include "loop_clock.hpp"
#include "transport/keyring.hpp"
#include "transport/transport.hpp"
#include "mirror.hpp"
#include "sentinel.hpp"
#include "fs/filesystem.hpp"
#include "fs/mount_table.hpp"
#include "fs/session.hpp"
#include "fs/watchdog.hpp"
#include "http/server.hpp"
#include "http/routes.hpp"
#include "net/health_checker.hpp"
#include "registrar.hpp"
#include "options.hpp"
#include "state_store.hpp"

namespace {

constexpr int kExitUsage = 2;
constexpr int kExitStart = 1;
constexpr int kExitStalled = 3;  // the watchdog ended the mount

// The kernel's FUSE request timeout (seconds, 0: none) for connections made
// now: the server asks for none (libfuse 3.14 cannot), so the sysctls decide.
long kernel_request_timeout() {
  auto read = [](const char* path) {
    long value = 0;
    if (FILE* f = std::fopen(path, "r")) {
      if (std::fscanf(f, "%ld", &value) != 1) value = 0;
      std::fclose(f);
    }
    return value;
  };
  const long def = read("/proc/sys/fs/fuse/default_request_timeout");
  const long max = read("/proc/sys/fs/fuse/max_request_timeout");
  return max > 0 && (def == 0 || def > max) ? max : def;
}

std::string host_name() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return "regfs-node";
  return buf;
}

int run(const regfs::Options& opt) {
  using namespace regfs;
  // Forked before any thread or descriptor exists (sentinel.hpp).
  std::optional<Sentinel> sentinel;
  if (!opt.no_mount) sentinel = Sentinel::start();
  RegistrarConfig config;
  config.name = opt.node_name.empty() ? host_name() : opt.node_name;
  if (!valid_node_name(config.name)) {
    // Only the host name can get here: --node-name was checked with the options.
    spdlog::error("the host name '{}' is not a node name (1-{} characters of A-Z a-z 0-9 . _ -,"
                  " not starting with '.'): give --node-name",
                  config.name, kMaxNodeName);
    return kExitUsage;
  }
  config.advertise = opt.advertise.empty() ? detect_advertise_address() : opt.advertise;
  config.bind = opt.bind;
  config.fresh = opt.fresh;
  config.read_timeout = opt.read_timeout;
  config.wait_timeout = opt.wait_timeout;
  config.reap_after = opt.reap_after;
  config.recheck_after = opt.recheck_after;
  config.check_interval = opt.check_interval;
  config.check_all = !opt.mirror.empty();

  // A malformed --bind leaves no host: not loopback here, refused by the transport.
  const auto bind_addr = HostPort::parse(opt.bind);
  const std::string bind_host = bind_addr ? bind_addr->host : std::string();
  const bool gossip_store = opt.store != "etcd";
  if (gossip_store && opt.key_file.empty() && !opt.insecure && !is_loopback_host(bind_host)) {
    spdlog::error("refusing to listen on {} without a key: give --key-file or --insecure", opt.bind);
    return kExitUsage;
  }
  if (!opt.writers.empty()) {
    const group* g = getgrnam(opt.writers.c_str());
    if (g == nullptr) {
      spdlog::error("--writers: no group named '{}'", opt.writers);
      return kExitUsage;
    }
    config.writers_gid = g->gr_gid;
  }
  // The HTTP face: a token guards its data; beyond loopback one is required,
  // as a key is for gossip (docs/SECURITY.md).
  std::string http_token;
  if (!opt.http_token_file.empty()) {
    std::ifstream file(opt.http_token_file);
    std::string text((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
    http_token = http::token_from_file_text(text.substr(0, 4096));
    if (!file || http_token.size() < 16) {
      spdlog::error("--http-token-file: the first line of {} must be a token of at least 16 printable"
                    " characters without blanks",
                    opt.http_token_file);
      return kExitUsage;
    }
  }
  if (!opt.http.empty() && http_token.empty() && !is_loopback_host(HostPort::parse(opt.http)->host)) {
    spdlog::error("refusing to serve HTTP on {} without a token: give --http-token-file", opt.http);
    return kExitUsage;
  }
  std::optional<transport::Keyring> keyring;
  if (!opt.key_file.empty()) {
    auto loaded = transport::Keyring::load(opt.key_file);
    if (!loaded) {
      spdlog::error("--key-file: {}", loaded.error().detail);
      return kExitUsage;
    }
    keyring = std::move(*loaded);
  }
  // etcds://: every TLS file is read now, before anything is created.
  std::shared_ptr<boost::asio::ssl::context> store_tls;
  if (opt.store_tls) {
    auto made = etcd::make_tls_context({opt.store_ca, opt.store_cert, opt.store_key});
    if (!made) {
      spdlog::error("{}", made.error().detail);
      return kExitUsage;
    }
    store_tls = std::move(*made);
  }

  auto store = StateStore::open(opt.state_dir);
  if (!store) {
    spdlog::error("state directory: {}", store.error().detail);
    return kExitStart;
  }
  // A new life supersedes the previous one everywhere: the generation grows
  // across restarts, even if the state directory was lost (wall clock floor).
  const auto wall_us = std::chrono::duration_cast<std::chrono::microseconds>(
      std::chrono::system_clock::now().time_since_epoch());
  auto generation = store->next_generation(static_cast<std::uint64_t>(wall_us.count()));
  if (!generation) {
    spdlog::error("state directory: {}", generation.error().detail);
    return kExitStart;
  }
  config.generation = *generation;

  boost::asio::io_context io(1);
  net::HealthChecker checker(io);
  LoopClock clock(io);
  LoopChecker loop_checker(checker);
  Registrar registrar(clock, loop_checker, *store, config);
  clock.on_wake([&registrar] { registrar.tick(); });
  auto restored = registrar.start();
  if (!restored) {
    spdlog::error("state directory: {}", restored.error().detail);
    return kExitStart;
  }

  std::unique_ptr<Mirror> mirror;
  if (!opt.mirror.empty()) {
    auto opened = Mirror::open(io, opt.mirror, registrar.registry());
    if (!opened) {
      spdlog::error("{}", opened.error().detail);
      return kExitStart;
    }
    mirror = std::move(*opened);
    registrar.add_sink(mirror.get());
    registrar.add_metrics([&mirror] { return mirror->metrics_text(); });
  }
  std::unique_ptr<ControlSocket> control;
  if (!opt.mirror.empty()) {
    auto opened =
        ControlSocket::open(io, opt.mirror + "/.regfsd.sock", registrar, config.writers_gid);
    if (!opened) {
      spdlog::error("{}", opened.error().detail);
      return kExitStart;
    }
    control = std::move(*opened);
    registrar.add_metrics([&control] { return control->metrics_text(); });
  }

  fs::MountOptions mount_options;
  mount_options.writers_gid = config.writers_gid;
  mount_options.limits = config.limits;
  fs::Filesystem filesystem(registrar, mount_options);
  registrar.add_sink(&filesystem);
  filesystem.follow(registrar.feed());  // poll() and /registry/.events
  registrar.add_metrics([&filesystem] { return filesystem.metrics_text(); });

  // The store (docs/DESIGN.md, Stores), chosen once: etcd, or the gossip
  // cluster, whose peers a PeerFinder finds.
  std::unique_ptr<Replicator> replicator;
  etcd::EtcdStore* etcd_store = nullptr;
  ClusterDriver* cluster = nullptr;  // frames reach the driver once it exists
  std::unique_ptr<PeerFinder> finder;
  if (!gossip_store) {
    etcd::StoreConfig store_config;
    store_config.members = opt.store_members;
    store_config.prefix = opt.store_prefix;
    store_config.node = config.name;
    store_config.write_timeout = opt.store_timeout;
    store_config.ttl = opt.store_ttl;
    store_config.watch_silence = 3 * opt.store_ttl;
    store_config.tls = store_tls;
    if (!opt.store_user.empty()) {
      std::ifstream file(opt.store_password_file);
      std::string password;
      if (!file || !std::getline(file, password) || password.empty()) {
        spdlog::error("--store-password-file: cannot read a password from the first line of {}",
                      opt.store_password_file);
        return kExitUsage;
      }
      if (!password.empty() && password.back() == '\r') password.pop_back();
      store_config.user = opt.store_user;
      store_config.password = std::move(password);
    }
    auto made = std::make_unique<etcd::EtcdStore>(io, registrar, store_config);
    etcd_store = made.get();
    replicator = std::move(made);
  } else {
    // `cluster` outlives the transport, which the driver owns.
    auto transport = transport::Transport::open(
        io, opt.bind, keyring, cluster::Config{}.wire.max_stream,
        [&cluster](const std::string& from, bool stream, std::span<const std::uint8_t> frame) {
          if (cluster != nullptr) cluster->deliver(from, stream, frame);
        });
    if (!transport) {
      spdlog::error("{}", transport.error().detail);
      return kExitStart;
    }
    // This node's gossip address: peers reach us at --advertise when given
    // (behind NAT, say), else at the bound address, or at the address found
    // from the interfaces when bound to every interface.
    const bool wildcard = bind_host == "0.0.0.0" || bind_host == "::";
    const std::string host = wildcard || !opt.advertise.empty() ? config.advertise : bind_host;
    const std::string gossip = HostPort{host, (*transport)->port()}.to_string();
    const cluster::NodeId self{config.name, config.generation};
    cluster::Config cluster_config;
    cluster_config.clock_generation = static_cast<std::uint64_t>(wall_us.count());
    auto driver = std::make_unique<ClusterDriver>(io, registrar, cluster_config, self, gossip,
                                                  std::move(*transport),
                                                  std::random_device{}() ^ config.generation);
    driver->on_new_life = [&store](std::uint64_t g) {
      if (auto recorded = store->next_generation(g); !recorded) {
        spdlog::error("state directory: {}", recorded.error().detail);
      }
    };
    cluster = driver.get();
    finder = std::make_unique<PeerFinder>(
        io, config.name, gossip, opt.join,
        std::min<Duration>(cluster_config.rejoin_interval, seconds(10)),
        [cluster](const std::string& addr) { cluster->join(addr); });
    replicator = std::move(driver);
    spdlog::info("gossip on {} ({})", gossip, keyring ? "encrypted" : "no key: in the clear");
  }
  registrar.set_replicator(replicator.get());  // hands it the restored registrations
  registrar.add_metrics([&replicator] { return replicator->metrics_text(); });
  if (etcd_store != nullptr) etcd_store->start();
  if (cluster != nullptr) cluster->start();
  if (finder) finder->start();

  std::unique_ptr<fs::Session> session;
  std::unique_ptr<http::Server> web;
  bool stopping = false;
  auto shutdown = [&](const char* why) {
    if (stopping) return;
    stopping = true;
    spdlog::info("stopping: {}", why);
    if (session) session->unmount();
    if (web) web->stop();
    registrar.stop();
    checker.cancel_all();
    // Say goodbye so peers drop our instances at once, then stop.
    if (finder) finder->stop();
    replicator->leave([&io] { io.stop(); });
  };
  if (!opt.no_mount) {
    auto mounted =
        fs::Session::mount(io, filesystem, opt.mount,
                           std::chrono::duration_cast<std::chrono::microseconds>(opt.busy_poll),
                           [&] { shutdown("unmounted"); },
                           // A predecessor's connection silent this long is dead (the
                           // watchdog's bound; its default when the watchdog is off).
                           std::chrono::duration_cast<std::chrono::milliseconds>(
                               opt.stall_timeout != Duration::zero() ? opt.stall_timeout
                                                                     : seconds(5)));
    if (!mounted) {
      spdlog::error("{}", mounted.error().detail);
      return kExitStart;
    }
    session = std::move(*mounted);
    if (const auto entry = fs::topmost_mount(fs::table_path(opt.mount)); sentinel && entry) {
      sentinel->watch(entry->minor);
    }
    const long timeout = kernel_request_timeout();
    const auto longest = std::chrono::duration_cast<std::chrono::seconds>(
        std::max(opt.wait_timeout, opt.read_timeout));
    if (timeout > 0 && timeout <= longest.count()) {
      spdlog::warn("the kernel's FUSE request timeout ({} s) is not above the longest read "
                   "({} s): a read that long ends the mount (docs/INTERFACES.md)",
                   timeout, longest.count());
    }
  }

  // Started once the mount (or the mirror) serves: /v1/health answers what
  // reading .metrics would.
  if (!opt.http.empty()) {
    http::Limits limits;
    limits.max_clients = opt.http_max_clients;
    limits.max_streams = opt.http_max_streams;
    http::Sources sources;
    sources.status = [&registrar] {
      std::string text;
      registrar.answer(fs::FileKind::status, "", "", [&text](Result<fs::Answer> a) {
        if (a) text = std::move(a->content);
      });
      return text;
    };
    sources.metrics = [&registrar] {
      std::string text;
      registrar.answer(fs::FileKind::metrics, "", "", [&text](Result<fs::Answer> a) {
        if (a) text = std::move(a->content);
      });
      return text;
    };
    sources.ready = [&stopping] { return !stopping; };
    sources.feed = &registrar.feed();
    sources.wall_offset = std::chrono::system_clock::now().time_since_epoch() - steady_now().since_epoch;
    auto opened = http::Server::open(io, opt.http, http_token, limits, std::move(sources));
    if (!opened) {
      spdlog::error("{}", opened.error().detail);
      return kExitStart;
    }
    web = std::move(*opened);
    registrar.add_metrics([&web] { return web->metrics_text(); });
    spdlog::info("http on {}{}", web->address(), http_token.empty() ? "" : " (token required)");
  }

  // A loop that stops making progress ends the mount, so that readers fail
  // instead of waiting for good, and then the process, so that its
  // supervisor starts a daemon that takes the mount over.
  std::optional<fs::Watchdog> watchdog;
  if (session && opt.stall_timeout > Duration::zero()) {
    const auto bound = std::chrono::duration_cast<std::chrono::milliseconds>(opt.stall_timeout);
    watchdog.emplace(
        io, bound,
        [mount = opt.mount, bound] {
          spdlog::critical("the event loop made no progress for {} ms: aborting the mount {}",
                           bound.count(), mount);
          fs::abort_mount(mount);
        },
        [] {
          spdlog::critical("the event loop is still stuck: exiting");
          std::_Exit(kExitStalled);
        });
  }

  boost::asio::signal_set signals(io, SIGTERM, SIGINT);
  signals.async_wait([&](const boost::system::error_code& ec, int sig) {
    if (!ec) shutdown(sig == SIGTERM ? "SIGTERM" : "SIGINT");
  });
  // SIGHUP re-reads --key-file: keys rotate without a restart
  // (docs/SECURITY.md). A file that does not load changes nothing.
  boost::asio::signal_set hangups(io, SIGHUP);
  std::function<void()> on_hangup = [&] {
    hangups.async_wait([&](const boost::system::error_code& ec, int) {
      if (ec || stopping) return;
      if (opt.key_file.empty() || cluster == nullptr) {
        spdlog::warn("SIGHUP: no --key-file to re-read");
      } else if (auto loaded = transport::Keyring::load(opt.key_file); !loaded) {
        spdlog::error("SIGHUP: --key-file: {}; the keyring is unchanged", loaded.error().detail);
      } else if (auto st = cluster->replace_keyring(std::move(*loaded)); !st.ok()) {
        spdlog::error("SIGHUP: {}; the keyring is unchanged", st.error().detail);
      } else {
        spdlog::info("SIGHUP: keyring re-read from {}", opt.key_file);
      }
      on_hangup();
    });
  };
  on_hangup();
  std::signal(SIGPIPE, SIG_IGN);

  spdlog::info("node {} (generation {}) serving {}{} with {} restored service(s); advertise {}",
               config.name, config.generation, opt.no_mount ? "" : opt.mount,
               opt.mirror.empty() ? "" : " mirror " + opt.mirror, *restored, config.advertise);
  io.run();
  const bool stalled = watchdog && watchdog->fired();
  watchdog.reset();
  session.reset();
  return stalled ? kExitStalled : 0;
}

}  // namespace

int main(int argc, char** argv) {
  auto logger = spdlog::stderr_color_mt("regfsd");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");

  std::vector<std::string> args(argv + 1, argv + argc);
  auto options = regfs::parse_options(args, [](const char* name) -> std::optional<std::string> {
    const char* v = std::getenv(name);
    return v == nullptr ? std::nullopt : std::optional<std::string>(v);
  });
  if (!options) {
    std::cerr << "regfsd: " << options.error().detail << "\n" << regfs::options_usage();
    return kExitUsage;
  }
  if (options->help) {
    std::cout << regfs::options_usage();
    return 0;
  }
  if (options->version) {
    std::cout << "regfsd " REGFS_VERSION "\n";
    return 0;
  }
  spdlog::set_level(spdlog::level::from_str(options->log_level));
  try {
    return run(*options);
  } catch (const std::exception& e) {
    spdlog::critical("fatal: {}", e.what());
    return kExitStart;
  }
}
