// The daemon's application core on the event-loop thread: the registry, this
// node's own registrations and their durability, the health checks behind
// every read, the owner's background checks and reaping.
//
// It is the filesystem's Backend. It reads no clock and opens no socket: the
// time and its timers come from a Clock, health checks from a Checker, both
// passed in (the daemon's run on its Asio loop, loop_clock.hpp; a test's are
// values it moves by hand). Not thread-safe: one thread calls everything,
// the Clock's and the Checker's callbacks included.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "core/change_feed.hpp"
#include "core/metrics.hpp"
#include "core/registry.hpp"
#include "core/render.hpp"
#include "fs/backend.hpp"
#include "replicator.hpp"
#include "state_store.hpp"

namespace regfs {

struct RegistrarConfig {
  std::string name;
  std::string advertise;  // fills ":port" registrations
  std::string bind;
  std::uint64_t generation = 0;
  gid_t writers_gid = 0;  // 0: root only
  Duration fresh = seconds(1);
  Duration read_timeout = seconds(1);
  Duration wait_timeout = seconds(30);
  Duration reap_after = seconds(60);
  // A re-read accepts a verdict on the endpoint its reader was handed last
  // only when younger than this (zero: no different from any read). Bounds
  // the checks re-reads add to one per endpoint per `recheck_after`.
  Duration recheck_after = milliseconds(100);
  Duration check_interval = seconds(5);
  bool check_all = false;  // background checks of every instance, not only own (mirror mode)
  Limits limits;
};

// The monotonic clock the adapters use.
Time steady_now();

// Where the registrar reads the time and asks to be woken.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual Time now() const = 0;
  // The registrar's tick() is due at `when` (Time{Duration::max()}: nothing is
  // due). Each call replaces the previous one.
  virtual void wake_at(Time when) = 0;
};

// What a health check found.
struct CheckResult {
  bool healthy = false;
  std::string detail;  // "connected", "http 200", "connection refused", ...
};

// Runs health checks for the registrar.
class Checker {
 public:
  virtual ~Checker() = default;
  using Done = std::function<void(const CheckResult&)>;
  // Checks `endpoint` with `check`; calls `done` exactly once, within
  // `timeout`, never before returning.
  virtual void check(const Endpoint& endpoint, const Check& check, Duration timeout, Done done) = 0;
};

class Registrar final : public fs::Backend, public RemoteSink {
 public:
  // `clock`, `checker` and `store` must outlive the registrar.
  Registrar(Clock& clock, Checker& checker, StateStore& store, RegistrarConfig config);
  ~Registrar() override;

  // Loads this node's registrations from the state directory and starts the
  // background checks. Returns how many services were restored.
  Result<std::size_t> start();
  // Stops timers and parked reads (they fail with host_down). Checks still
  // running complete into nothing.
  void stop();

  // Fires what is due: read deadlines, .wait/ retries, the background round.
  // The Clock is told when to call it next.
  void tick();
  Time next_deadline() const;

  // Who is told of changes (the filesystem, the mirror). Each must outlive the registrar.
  void add_sink(fs::ChangeSink* sink) { sinks_.push_back(sink); }
  // The store told of every change to this node's own instances (resolved),
  // and asked for .status.json's members and store state. Told of every
  // restored service when set. Must outlive the registrar (or be reset to null).
  void set_replicator(Replicator* replicator);
  // RemoteSink: another node's instances of `service`, as replicated (empty: none).
  void apply_remote(const std::string& service, const std::string& origin,
                    std::vector<InstanceSpec> instances) override;

  // More Prometheus text for .metrics (other layers' counters).
  void add_metrics(std::function<std::string()> source) { metric_sources_.push_back(std::move(source)); }

  // fs::Backend
  Abandon answer(fs::FileKind kind, const std::string& service, const std::string& suspect,
                 AnswerFn done) override;
  std::size_t instance_count(std::string_view service) const override;
  std::vector<std::string> list() const override;
  bool may_write(const fs::Caller& who) const override;
  Status write(const std::string& service, std::string_view text, bool append) override;
  Status remove(const std::string& service) override;

  const Registry& registry() const { return registry_; }
  const Metrics& metrics() const { return metrics_; }
  // Every change to what a name would answer: instances added and removed
  // (this node's writes and reaping, replicated changes from either store)
  // and verdict flips (core/change_feed.hpp). Loop thread only.
  ChangeFeed& feed() { return feed_; }

 private:
  struct Read;  // a read waiting for checks (registrar.cpp)
  struct Timer {
    std::shared_ptr<Read> read;
    bool retry = false;  // a .wait/ read looks again; else the read's deadline
  };
  using Timers = std::multimap<Time, Timer>;
  using InstanceKey = std::tuple<std::string, std::string, InstanceSpec>;  // service, owner, spec

  Status apply_own(const std::string& service, std::vector<InstanceSpec> raw);
  std::vector<InstanceSpec> resolve(const std::vector<InstanceSpec>& raw) const;
  void changed(const std::string& service);
  // Publishes what a replace() reported to the feed.
  void publish(const std::string& service, const std::vector<InstanceChange>& diff);

  void start_read(const std::shared_ptr<Read>& read, Time deadline);
  void replan(const std::shared_ptr<Read>& read, bool final);
  // Takes a read out of the waiting ones and drops its timers; false when it
  // was finished or abandoned already.
  bool retire(const std::shared_ptr<Read>& read);
  void finish(const std::shared_ptr<Read>& read, Result<fs::Answer> answer);
  // Ends `read` without an answer: nobody waits for it any more.
  void abandon(const std::shared_ptr<Read>& read);
  void replan_service(const std::string& service);
  // Starts a check of `inst` unless one is under way; whether it started.
  bool start_check(const std::string& service, const Instance& inst);
  void recorded(const InstanceKey& key, const CheckResult& result, Time started);
  void rearm();

  void background_round();

  Clock& clock_;
  Checker& checker_;
  StateStore& store_;
  RegistrarConfig config_;
  std::vector<fs::ChangeSink*> sinks_;
  std::vector<std::function<std::string()>> metric_sources_;
  Replicator* replicator_ = nullptr;

  Registry registry_;
  ChangeFeed feed_;
  std::map<std::string, std::vector<InstanceSpec>, std::less<>> own_;  // as written, durable
  Metrics metrics_;
  std::set<InstanceKey> in_flight_;
  std::map<std::string, std::vector<std::shared_ptr<Read>>, std::less<>> reads_;
  Timers timers_;  // parked reads' deadlines and retries
  Time background_at_{Duration::max()};
  Time armed_for_{Duration::max()};  // what the Clock was last asked for
  bool stopped_ = false;
};

}  // namespace regfs
