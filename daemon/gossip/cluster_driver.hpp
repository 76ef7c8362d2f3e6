// The gossip store: drives the pure cluster core on real sockets. Delivers
// frames, ticks it at its deadlines, sends what it returns, and applies what
// changed to the daemon's registry through a RemoteSink (so the mount
// invalidates exactly those services). Peers come from a PeerFinder
// (peer_finder.hpp) through join().
//
// Loop thread only. `sink` and `io` must outlive the driver.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "cluster/core.hpp"
#include "core/render.hpp"
#include "replicator.hpp"
#include "transport/transport.hpp"

namespace regfs {

class ClusterDriver final : public Replicator {
 public:
  ClusterDriver(boost::asio::io_context& io, RemoteSink& sink, cluster::Config config,
                cluster::NodeId self, std::string gossip_addr,
                std::unique_ptr<transport::Transport> transport, std::uint64_t seed);
  ~ClusterDriver() override;

  // Starts ticking.
  void start();
  // Joins through the member at `addr` (once per address; our own is ignored).
  void join(const std::string& addr);

  // Replicator. A change is taken at once: gossip acknowledges nothing.
  void restore(const std::string& service, const std::vector<InstanceSpec>& instances) override;
  Status publish(const std::string& service, const std::vector<InstanceSpec>& instances) override;
  std::vector<MemberView> members() const override;
  StoreView store_view() const override { return StoreView{}; }
  std::string metrics_text() const override;
  // Leaves the cluster, keeps gossiping briefly so peers hear it, then calls `done`.
  void leave(std::function<void()> done) override;

  // Rotates keys without a restart (Transport::replace_keyring).
  Status replace_keyring(transport::Keyring keyring) {
    return transport_->replace_keyring(std::move(keyring));
  }

  // The transport's delivery callback target.
  void deliver(const std::string& from, bool stream, std::span<const std::uint8_t> frame);

  // Called with the generation of a new life the core started (it learned of
  // a life of its name at least as high): the daemon records it, so that its
  // next start goes higher still.
  std::function<void(std::uint64_t)> on_new_life;

 private:
  void pump();
  void schedule();
  // Logs datagrams refused for their time stamp since the last call.
  void warn_stale();

  boost::asio::io_context& io_;
  RemoteSink& sink_;
  cluster::Core core_;
  std::string gossip_addr_;
  std::unique_ptr<transport::Transport> transport_;
  boost::asio::steady_timer timer_;
  bool armed_ = false;  // timer_ waits for armed_for_
  Time armed_for_{};
  std::set<std::string> seeds_;
  std::uint64_t suspicions_ = 0;  // members seen turning suspect
  std::uint64_t stale_seen_ = 0;  // transport's stale count at the last warn_stale()
  bool stopping_ = false;
};

}  // namespace regfs
