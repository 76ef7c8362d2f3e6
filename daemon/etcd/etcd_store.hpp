// The etcd store: the registry kept in an etcd v3 cluster through its JSON
// gateway (docs/INTERFACES.md, The etcd store; docs/DESIGN.md, Stores).
//
// A session with the cluster: range the prefix, hold one lease for this
// daemon (kept alive every third of its TTL), put this node's registrations
// under it, and watch the prefix from the range's revision + 1. Every
// failure (a request that fails or times out, a watch that ends or stays
// silent) moves to the next member and starts the session again from where
// it stood: the watch resumes after the last revision it delivered; a watch
// cancelled for compaction ranges the prefix again; a lease that expired
// meanwhile is replaced and this node's registrations put again under the
// new one. While no member answers, what was last seen stays served.
//
// publish() is synchronous: it returns once etcd committed the change, or
// fails with Errc::timed_out after the write deadline, having changed
// nothing (a transaction either commits or does not). It blocks the loop
// for at most that deadline.
//
// Loop thread only. `io` and `sink` must outlive the store.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "codec.hpp"
#include "http.hpp"
#include "replicator.hpp"

namespace regfs::etcd {

struct StoreConfig {
  std::vector<std::string> members;  // HOST:PORT of each etcd member's client URL
  std::string prefix = "/regfs/";
  std::string node;                  // this daemon's node name: the owner in keys
  // etcd authentication (empty user: none): a token from /v3/auth/authenticate
  // goes with every request, and is taken again when etcd calls it invalid.
  std::string user;
  std::string password;
  // TLS to every member (etcds://; tls.hpp); null: plain HTTP.
  std::shared_ptr<boost::asio::ssl::context> tls;
  Duration write_timeout = seconds(2);
  Duration ttl = seconds(10);
  // A watch that delivered nothing for this long is taken for dead and
  // opened again (etcd sends progress notifications at its
  // --experimental-watch-progress-notify-interval, 10 minutes by default: on
  // an idle prefix this costs one request). regfsd: three lease TTLs.
  Duration watch_silence = seconds(30);
  Duration request_timeout = seconds(2);  // background requests
  Duration retry_after = milliseconds(500);  // after every member failed once
};

class EtcdStore final : public Replicator {
 public:
  EtcdStore(boost::asio::io_context& io, RemoteSink& sink, StoreConfig config);
  ~EtcdStore() override;

  // Starts the session in the background.
  void start();

  // Replicator
  void restore(const std::string& service, const std::vector<InstanceSpec>& instances) override;
  Status publish(const std::string& service, const std::vector<InstanceSpec>& instances) override;
  std::vector<MemberView> members() const override;
  StoreView store_view() const override;
  std::string metrics_text() const override;
  // Revokes the lease (every registration of this node disappears at once),
  // within the write deadline, then calls `done`.
  void leave(std::function<void()> done) override;

 private:
  using Done = std::function<void(Result<Reply>)>;
  void post(const std::string& path, std::string body, Done done);
  // Synchronous, on a private io_context, within `timeout`.
  Result<Reply> post_now(const std::string& member, const std::string& path, std::string body,
                         Duration timeout);
  bool needs_token() const { return !config_.user.empty() && token_.empty() && !auth_off_; }
  // Takes what an authenticate request answered; false: the session cannot go on.
  bool took_token(Result<std::string> token);
  static bool token_refused(const Error& e);

  void connect();  // (re)starts the session
  void ranged(const RangeReply& range);
  void ensure_lease();
  void sync_own();
  void sync_next(std::shared_ptr<const std::vector<std::string>> pending, std::size_t i);
  void open_watch();
  void on_watch_line(const std::string& line);
  void restart(const std::string& why, bool failure);
  void arm_silence();
  void keepalive();
  void lease_lost();

  void apply_changes(const KeySpace::Changed& changed);
  void mark_reachable();
  void mark_unreachable(const std::string& why);
  std::string txn_body(const std::string& service, const std::vector<InstanceSpec>& specs) const;
  static bool lease_missing(const Error& e);

  boost::asio::io_context& io_;
  boost::asio::io_context write_io_{1};  // publish()'s synchronous requests
  RemoteSink& sink_;
  StoreConfig config_;
  std::size_t member_ = 0;  // the member in use
  KeySpace keys_;
  std::map<std::string, std::vector<InstanceSpec>> own_;  // this node's, as etcd should hold them

  std::uint64_t session_ = 0;  // bumped by restart(): callbacks of an older session do nothing
  bool connecting_ = false;
  bool synced_ = false;           // own_ is in etcd under lease_
  std::int64_t lease_ = 0;
  std::string token_;  // etcd's auth token, when a user is configured
  bool auth_off_ = false;  // etcd said its authentication is off: no token until it asks
  bool lease_verified_ = false;   // lease_ answered a keepalive since the last failure
  // Keys a publish that failed without an answer may have put: the next
  // sync deletes those not in own_.
  std::map<std::string, std::set<std::string>> maybe_stale_;
  std::int64_t next_revision_ = 0;  // where a watch resumes; 0: range first
  std::shared_ptr<Post> request_;   // the session's request in flight
  std::shared_ptr<Post> keepalive_req_;
  std::shared_ptr<Watch> watch_;
  boost::asio::steady_timer retry_timer_;
  boost::asio::steady_timer keepalive_timer_;
  boost::asio::steady_timer silence_timer_;
  std::size_t failures_in_row_ = 0;
  std::chrono::system_clock::time_point first_failure_;
  bool stopping_ = false;

  bool reachable_ = false;
  bool ever_reachable_ = false;
  std::chrono::system_clock::time_point unreachable_since_;
  std::string last_error_;

  struct Stats {
    std::uint64_t requests = 0;
    std::uint64_t request_failures = 0;
    std::uint64_t ranges = 0;
    std::uint64_t watches = 0;
    std::uint64_t watch_restarts = 0;
    std::uint64_t compactions = 0;
    std::uint64_t events = 0;
    std::uint64_t lease_grants = 0;
    std::uint64_t leases_lost = 0;
    std::uint64_t publishes = 0;
    std::uint64_t publish_failures = 0;
  } stats_;
};

}  // namespace regfs::etcd
