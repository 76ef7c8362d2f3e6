// Drives the pure cluster core on real sockets: delivers frames, ticks it at
// its deadlines, sends what it returns, and applies what changed to the
// daemon's registry (so the mount invalidates exactly those services).
//
// Also finds peers: HOST:PORT, dns:NAME[:PORT] (looked up again every
// min(rejoin interval, 10 s)) and file:DIR (each daemon keeps DIR/<node-name> holding
// its gossip address and reads the others'; files untouched for five
// minutes are stale and ignored).
//
// Loop thread only. `registrar` and `io` must outlive the driver.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "cluster/core.hpp"
#include "core/render.hpp"
#include "registrar.hpp"
#include "transport/transport.hpp"

namespace regfs {

class ClusterDriver {
 public:
  ClusterDriver(boost::asio::io_context& io, Registrar& registrar, cluster::Config config,
                cluster::NodeId self, std::string gossip_addr,
                std::unique_ptr<transport::Transport> transport, std::uint64_t seed);
  ~ClusterDriver();

  // Starts ticking and joining. `sources` are --join values.
  void start(std::vector<std::string> sources);
  // Replicates this node's instances of `service` (empty: removed).
  void set_service(const std::string& service, const std::vector<InstanceSpec>& instances);
  // Leaves the cluster, keeps gossiping briefly so peers hear it, then calls `done`.
  void leave(std::function<void()> done);

  // Rotates keys without a restart (Transport::replace_keyring).
  Status replace_keyring(transport::Keyring keyring) {
    return transport_->replace_keyring(std::move(keyring));
  }

  std::vector<MemberView> members() const;
  std::string metrics_text() const;

  // The transport's delivery callback target.
  void deliver(const std::string& from, bool stream, std::span<const std::uint8_t> frame);

  // Called with the generation of a new life the core started (it learned of
  // a life of its name at least as high): the daemon records it, so that its
  // next start goes higher still.
  std::function<void(std::uint64_t)> on_new_life;

 private:
  void pump();
  void schedule();
  void refresh_sources();
  void resolve_dns(const std::string& host, const std::string& port);
  void file_sources(const std::string& dir);
  void add_seed(const std::string& addr);
  // Logs datagrams refused for their time stamp since the last call.
  void warn_stale();

  boost::asio::io_context& io_;
  Registrar& registrar_;
  cluster::Core core_;
  std::string gossip_addr_;
  std::unique_ptr<transport::Transport> transport_;
  boost::asio::steady_timer timer_;
  bool armed_ = false;  // timer_ waits for armed_for_
  Time armed_for_{};
  boost::asio::steady_timer sources_timer_;
  boost::asio::ip::tcp::resolver resolver_;
  std::vector<std::string> sources_;
  std::set<std::string> seeds_;
  std::vector<std::string> own_files_;  // file:DIR entries to remove on leave
  Duration rejoin_;
  std::uint64_t suspicions_ = 0;  // members seen turning suspect
  std::uint64_t stale_seen_ = 0;  // transport's stale count at the last warn_stale()
  bool stopping_ = false;
};

}  // namespace regfs
