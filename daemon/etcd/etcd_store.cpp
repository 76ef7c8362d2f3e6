#include "etcd_store.hpp"

#include <boost/asio/post.hpp>
#include <ctime>
#include <spdlog/spdlog.h>
#include <thread>

#include "core/prometheus.hpp"

namespace regfs::etcd {

namespace asio = boost::asio;

namespace {

std::string rfc3339(std::chrono::system_clock::time_point t) {
  const std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::int64_t ms(Duration d) { return std::chrono::duration_cast<std::chrono::milliseconds>(d).count(); }

// The reply's body parsed with `parse`, or the request's error.
template <typename F>
auto parsed(Result<Reply>& r, F parse) -> decltype(parse(std::string_view{})) {
  if (!r) return r.error();
  return parse(r->body);
}

}  // namespace

EtcdStore::EtcdStore(asio::io_context& io, RemoteSink& sink, StoreConfig config)
    : io_(io),
      sink_(sink),
      config_(std::move(config)),
      keys_(config_.prefix),
      retry_timer_(io),
      keepalive_timer_(io),
      silence_timer_(io),
      unreachable_since_(std::chrono::system_clock::now()) {}

EtcdStore::~EtcdStore() {
  stopping_ = true;
  if (request_) request_->cancel();
  if (keepalive_req_) keepalive_req_->cancel();
  if (watch_) watch_->cancel();
  retry_timer_.cancel();
  keepalive_timer_.cancel();
  silence_timer_.cancel();
}

void EtcdStore::start() {
  spdlog::info("etcd: store under {} on {} member(s), lease TTL {} s", config_.prefix,
               config_.members.size(), std::chrono::duration_cast<std::chrono::seconds>(config_.ttl).count());
  connect();
  keepalive();
}

// ---- the session -------------------------------------------------------------

void EtcdStore::post(const std::string& path, std::string body, Done done) {
  ++stats_.requests;
  const auto s = session_;
  request_ = Post::start(io_, config_.members[member_], path, std::move(body), config_.request_timeout,
                         [this, s, done = std::move(done)](Result<Reply> r) {
    if (s != session_ || stopping_) return;
    if (!r) ++stats_.request_failures;
    done(std::move(r));
  }, token_, config_.tls.get());
}

void EtcdStore::connect() {
  if (stopping_) return;
  connecting_ = true;
  if (needs_token()) {
    post("/v3/auth/authenticate", auth_request(config_.user, config_.password), [this](Result<Reply> r) {
      auto token = parsed(r, parse_auth);
      const std::string why = token ? std::string() : token.error().detail;
      if (!took_token(std::move(token))) return restart(why, true);
      connect();
    });
    return;
  }
  if (next_revision_ != 0) return ensure_lease();
  ++stats_.ranges;
  post("/v3/kv/range", range_request(config_.prefix), [this](Result<Reply> r) {
    auto range = parsed(r, parse_range);
    if (!range) return restart(range.error().detail, true);
    ranged(*range);
  });
}

void EtcdStore::ranged(const RangeReply& range) {
  mark_reachable();
  apply_changes(keys_.reset(range.kvs));
  next_revision_ = range.revision + 1;
  spdlog::info("etcd: {} key(s) under {} at revision {} ({} ignored)", keys_.size(), config_.prefix,
               range.revision, keys_.ignored());
  ensure_lease();
}

void EtcdStore::ensure_lease() {
  if (lease_ != 0 && lease_verified_) return sync_own();
  if (lease_ != 0) {
    // After a failure: is the lease still there, or did it expire meanwhile?
    post("/v3/lease/keepalive", lease_keepalive_request(lease_), [this](Result<Reply> r) {
      auto lease = parsed(r, parse_lease);
      if (!lease) return restart(lease.error().detail, true);
      mark_reachable();
      if (lease->ttl == 0) {
        ++stats_.leases_lost;
        spdlog::warn("etcd: lease {:x} expired while etcd was out of reach: this node's "
                     "registrations go back under a new one", lease_);
        lease_ = 0;
        synced_ = false;
      } else {
        lease_verified_ = true;
      }
      ensure_lease();
    });
    return;
  }
  const auto ttl = std::chrono::duration_cast<std::chrono::seconds>(config_.ttl).count();
  post("/v3/lease/grant", lease_grant_request(ttl), [this](Result<Reply> r) {
    auto lease = parsed(r, parse_lease);
    if (!lease) return restart(lease.error().detail, true);
    mark_reachable();
    ++stats_.lease_grants;
    lease_ = lease->id;
    lease_verified_ = true;
    synced_ = false;
    spdlog::info("etcd: lease {:x} granted, TTL {} s", lease_, lease->ttl);
    sync_own();
  });
}

std::string EtcdStore::txn_body(const std::string& service,
                                const std::vector<InstanceSpec>& specs) const {
  std::set<std::string> fresh;
  for (const auto& spec : specs) fresh.insert(instance_key(config_.prefix, service, config_.node, spec.endpoint));
  std::set<std::string> stale;
  for (auto& key : keys_.keys_of(service, config_.node)) stale.insert(std::move(key));
  if (const auto it = own_.find(service); it != own_.end()) {
    for (const auto& spec : it->second) stale.insert(instance_key(config_.prefix, service, config_.node, spec.endpoint));
  }
  if (const auto it = maybe_stale_.find(service); it != maybe_stale_.end()) {
    stale.insert(it->second.begin(), it->second.end());
  }
  std::vector<std::string> deletes;
  for (const auto& key : stale) {
    if (!fresh.contains(key)) deletes.push_back(key);
  }
  if (deletes.empty() && specs.empty()) return {};
  return publish_request(config_.prefix, service, config_.node, specs, deletes, lease_);
}

void EtcdStore::sync_own() {
  if (synced_) return open_watch();
  // Every service this node holds or may have left keys of, one transaction each.
  std::set<std::string> services = keys_.services_of(config_.node);
  for (const auto& [service, specs] : own_) services.insert(service);
  for (const auto& [service, keys] : maybe_stale_) services.insert(service);
  sync_next(std::make_shared<const std::vector<std::string>>(services.begin(), services.end()), 0);
}

void EtcdStore::sync_next(std::shared_ptr<const std::vector<std::string>> pending, std::size_t i) {
  for (; i < pending->size(); ++i) {
    const auto& service = (*pending)[i];
    const auto it = own_.find(service);
    std::string body = txn_body(service, it == own_.end() ? std::vector<InstanceSpec>{} : it->second);
    if (body.empty()) continue;
    post("/v3/kv/txn", std::move(body), [this, pending, i](Result<Reply> r) {
      auto rev = parsed(r, parse_header_revision);
      if (!rev) {
        if (lease_missing(rev.error())) lease_ = 0;
        return restart(rev.error().detail, true);
      }
      maybe_stale_.erase((*pending)[i]);
      sync_next(pending, i + 1);
    });
    return;
  }
  synced_ = true;
  spdlog::info("etcd: {} service(s) of this node held under lease {:x}", own_.size(), lease_);
  open_watch();
}

void EtcdStore::open_watch() {
  // The lease is held and this node's keys are in place: keepalives run from
  // here on, whatever the watch does.
  connecting_ = false;
  ++stats_.watches;
  const auto s = session_;
  const auto& member = config_.members[member_];
  watch_ = Watch::start(
      io_, member, watch_request(config_.prefix, next_revision_), config_.request_timeout,
      [this, s](std::string line) {
        if (s == session_ && !stopping_) on_watch_line(line);
      },
      [this, s](const std::string& why) {
        if (s == session_ && !stopping_) restart("watch: " + why, true);
      },
      token_, config_.tls.get());
  arm_silence();
}

void EtcdStore::on_watch_line(const std::string& line) {
  arm_silence();
  auto m = parse_watch(line);
  if (!m) return restart(m.error().detail, true);
  if (m->canceled) {
    if (m->compact_revision > 0) {
      ++stats_.compactions;
      spdlog::warn("etcd: revisions up to {} were compacted before this node saw them: reading the "
                   "prefix again", m->compact_revision);
      next_revision_ = 0;
      return restart("compacted", false);
    }
    return restart("watch cancelled: " + m->cancel_reason, true);
  }
  if (m->created) {
    mark_reachable();
    spdlog::info("etcd: watching {} from revision {} on {}", config_.prefix, next_revision_,
                 config_.members[member_]);
    return;
  }
  if (m->events.empty()) {
    // A progress notification: every event up to its revision was delivered.
    next_revision_ = std::max(next_revision_, m->revision + 1);
    return;
  }
  stats_.events += m->events.size();
  for (const auto& ev : m->events) next_revision_ = std::max(next_revision_, ev.kv.mod_revision + 1);
  apply_changes(keys_.apply(m->events));
}

void EtcdStore::arm_silence() {
  silence_timer_.expires_after(config_.watch_silence);
  silence_timer_.async_wait([this, s = session_](const boost::system::error_code& ec) {
    if (ec || s != session_ || stopping_) return;
    // Re-watch from where it stood; a member that is really gone fails the connect.
    restart("watch: nothing for " + std::to_string(ms(config_.watch_silence)) + " ms", false);
  });
}

void EtcdStore::restart(const std::string& why, bool failure) {
  if (stopping_) return;
  if (token_refused(Error{Errc::io, why})) {  // authenticate again
    token_.clear();
    auth_off_ = false;
  }
  ++session_;
  if (request_) request_->cancel();
  if (watch_) {
    watch_->cancel();
    watch_.reset();
    ++stats_.watch_restarts;
  }
  silence_timer_.cancel();
  connecting_ = true;
  Duration delay = Duration::zero();
  if (failure) {
    const auto& failed = config_.members[member_];
    mark_unreachable(failed + ": " + why);
    // One round of warnings; while nothing answers, the retries log at debug.
    const auto level = failures_in_row_ <= config_.members.size() ? spdlog::level::warn : spdlog::level::debug;
    spdlog::log(level, "etcd: {}: {}; trying the next member", failed, why);
    lease_verified_ = false;
    member_ = (member_ + 1) % config_.members.size();
    // Every member failed once in this row: wait before the next round.
    if (failures_in_row_ % config_.members.size() == 0) delay = config_.retry_after;
  } else {
    spdlog::info("etcd: {}", why);
  }
  retry_timer_.expires_after(delay);
  retry_timer_.async_wait([this, s = session_](const boost::system::error_code& ec) {
    if (!ec && s == session_) connect();
  });
}

void EtcdStore::keepalive() {
  keepalive_timer_.expires_after(config_.ttl / 3);
  keepalive_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || stopping_) return;
    keepalive();
  });
  if (connecting_ || lease_ == 0) return;  // the session checks the lease as it connects
  // Bounded by the request timeout, not the interval: on a loaded host a slow
  // answer is not a lost member (two keepalives may overlap; both are harmless).
  ++stats_.requests;
  const auto s = session_;
  keepalive_req_ = Post::start(
      io_, config_.members[member_], "/v3/lease/keepalive", lease_keepalive_request(lease_),
      config_.request_timeout, [this, s](Result<Reply> r) {
        if (s != session_ || stopping_) return;
        auto lease = parsed(r, parse_lease);
        if (!lease) {
          ++stats_.request_failures;
          return restart("keepalive: " + lease.error().detail, true);
        }
        if (lease->ttl == 0) return lease_lost();
        mark_reachable();
      },
      token_, config_.tls.get());
}

void EtcdStore::lease_lost() {
  ++stats_.leases_lost;
  spdlog::warn("etcd: lease {:x} expired: this node's registrations go back under a new one", lease_);
  lease_ = 0;
  synced_ = false;
  restart("lease expired", false);
}

bool EtcdStore::took_token(Result<std::string> token) {
  if (token) {
    token_ = std::move(*token);
    return true;
  }
  if (token.error().detail.find("authentication is not enabled") != std::string::npos) {
    // A user given to an etcd without authentication: go on without a
    // token; a request refused for the want of one turns this back.
    auth_off_ = true;
    return true;
  }
  return false;
}

bool EtcdStore::token_refused(const Error& e) {
  // An expired token, or auth enabled after this daemon took none.
  return e.detail.find("invalid auth token") != std::string::npos ||
         e.detail.find("user name is empty") != std::string::npos;
}

bool EtcdStore::lease_missing(const Error& e) {
  return e.detail.find("requested lease not found") != std::string::npos;
}

// ---- changes -----------------------------------------------------------------

void EtcdStore::apply_changes(const KeySpace::Changed& changed) {
  for (const auto& [service, owner] : changed) {
    if (owner == config_.node) continue;
    sink_.apply_remote(service, owner, keys_.instances(service, owner));
  }
}

void EtcdStore::mark_reachable() {
  failures_in_row_ = 0;
  if (reachable_) return;
  reachable_ = true;
  if (ever_reachable_) {
    spdlog::info("etcd: reachable again on {} (out of reach since {})", config_.members[member_],
                 rfc3339(unreachable_since_));
  }
  ever_reachable_ = true;
}

void EtcdStore::mark_unreachable(const std::string& why) {
  last_error_ = why;
  const auto now = std::chrono::system_clock::now();
  if (failures_in_row_ == 0) first_failure_ = now;
  ++failures_in_row_;
  // Unreachable once every member failed in a row (one member down is not).
  if (reachable_ && failures_in_row_ >= config_.members.size()) {
    reachable_ = false;
    unreachable_since_ = first_failure_;
    spdlog::warn("etcd: no member reachable since {}: serving the registrations last seen", rfc3339(first_failure_));
  }
}

// ---- Replicator ----------------------------------------------------------------

void EtcdStore::restore(const std::string& service, const std::vector<InstanceSpec>& instances) {
  if (instances.empty()) {
    own_.erase(service);
  } else {
    own_[service] = instances;
  }
  synced_ = false;
}

Result<Reply> EtcdStore::post_now(const std::string& member, const std::string& path,
                                  std::string body, Duration timeout) {
  ++stats_.requests;
  std::optional<Result<Reply>> out;
  write_io_.restart();
  auto p = Post::start(write_io_, member, path, std::move(body), timeout,
                       [&out](Result<Reply> r) { out = std::move(r); }, token_, config_.tls.get());
  write_io_.run_for(std::chrono::duration_cast<std::chrono::nanoseconds>(timeout + milliseconds(50)));
  if (!out) {
    p->cancel();
    write_io_.restart();
    write_io_.poll();
    out = Error{Errc::timed_out, "etcd " + member + ": no answer in time"};
  }
  if (!*out) ++stats_.request_failures;
  return std::move(*out);
}

Status EtcdStore::publish(const std::string& service, const std::vector<InstanceSpec>& instances) {
  ++stats_.publishes;
  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + config_.write_timeout;
  std::string last = "no member tried";
  bool regranted = false;
  std::size_t tried = 0;
  for (int attempt = 0; attempt < 64; ++attempt) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) break;
    const Duration left = deadline - now;
    const auto& member = config_.members[member_];
    auto next_member = [&](const std::string& why) {
      last = member + ": " + why;
      member_ = (member_ + 1) % config_.members.size();
      if (++tried % config_.members.size() == 0) {
        // Every member refused: pause a little (within the deadline) before the next round.
        std::this_thread::sleep_for(std::min<Duration>(milliseconds(100), deadline - std::chrono::steady_clock::now()));
      }
    };
    if (needs_token()) {
      auto r = post_now(member, "/v3/auth/authenticate", auth_request(config_.user, config_.password), left);
      auto token = parsed(r, parse_auth);
      const std::string why = token ? std::string() : token.error().detail;
      if (!took_token(std::move(token))) {
        next_member(why);
        continue;
      }
    }
    if (lease_ == 0) {
      const auto ttl = std::chrono::duration_cast<std::chrono::seconds>(config_.ttl).count();
      auto r = post_now(member, "/v3/lease/grant", lease_grant_request(ttl), deadline - std::chrono::steady_clock::now());
      auto lease = parsed(r, parse_lease);
      if (!lease) {
        if (token_refused(lease.error())) {
          token_.clear();
          auth_off_ = false;
        }
        next_member(lease.error().detail);
        continue;
      }
      ++stats_.lease_grants;
      lease_ = lease->id;
      lease_verified_ = true;
      synced_ = false;
      regranted = true;
    }
    std::string body = txn_body(service, instances);
    if (body.empty()) break;  // nothing to do: etcd holds nothing of it (cannot happen for a change)
    auto r = post_now(member, "/v3/kv/txn", body, deadline - std::chrono::steady_clock::now());
    auto rev = parsed(r, parse_header_revision);
    if (rev) {
      if (instances.empty()) {
        own_.erase(service);
      } else {
        own_[service] = instances;
      }
      maybe_stale_.erase(service);
      mark_reachable();
      // Under a new lease the other services go back too: a new session
      // does it (and nothing the previous one had in flight applies).
      if (regranted) restart("lease replaced during a write", false);
      return ok_status();
    }
    if (lease_missing(rev.error())) {
      lease_ = 0;  // expired: a new one on the next attempt
      last = member + ": " + rev.error().detail;
      continue;
    }
    if (token_refused(rev.error())) {
      token_.clear();  // refused before it applied: authenticate again
      auth_off_ = false;
      last = member + ": " + rev.error().detail;
      continue;
    }
    if (rev.error().detail.find("too many operations in txn request") != std::string::npos) {
      // Refused before it applied: more puts and deletes than etcd's --max-txn-ops.
      ++stats_.publish_failures;
      return Error{Errc::too_many_instances,
                   "etcd: the change needs more operations than etcd's --max-txn-ops allows"};
    }
    // No answer, or an error etcd may still commit after (a leader lost
    // mid-request): the next sync removes what this transaction put unless
    // a later write puts it again.
    for (const auto& spec : instances) {
      maybe_stale_[service].insert(instance_key(config_.prefix, service, config_.node, spec.endpoint));
    }
    synced_ = false;
    next_member(rev.error().detail);
  }
  ++stats_.publish_failures;
  // Put back what etcd should hold (and, after a new lease, all of it).
  if (!synced_ || regranted) restart("a write failed: holding this node's registrations again", false);
  return Error{Errc::timed_out, "etcd: the change was not acknowledged within " +
                                    std::to_string(ms(config_.write_timeout)) + " ms (" + last + ")"};
}

std::vector<MemberView> EtcdStore::members() const {
  std::vector<MemberView> out;
  out.push_back(MemberView{config_.node, "", reachable_ ? "alive" : "unreachable", 0, 0, true});
  for (const auto& owner : keys_.owners()) {
    if (owner != config_.node) out.push_back(MemberView{owner, "", "alive", 0, 0, false});
  }
  return out;
}

StoreView EtcdStore::store_view() const {
  StoreView v;
  v.kind = "etcd";
  v.reachable = reachable_;
  v.endpoint = config_.members[member_];
  if (!reachable_) {
    v.unreachable_since = rfc3339(unreachable_since_);
    v.unreachable_for_ms = ms(std::chrono::system_clock::now() - unreachable_since_);
  }
  return v;
}

std::string EtcdStore::metrics_text() const {
  PrometheusText out;
  out.counter("regfs_etcd_requests_total", "Requests sent to etcd.", stats_.requests);
  out.counter("regfs_etcd_request_failures_total", "Requests to etcd that failed or timed out.",
              stats_.request_failures);
  out.counter("regfs_etcd_ranges_total", "Full reads of the prefix.", stats_.ranges);
  out.counter("regfs_etcd_watches_total", "Watch streams opened.", stats_.watches);
  out.counter("regfs_etcd_watch_restarts_total", "Watch streams ended and opened again.",
              stats_.watch_restarts);
  out.counter("regfs_etcd_compactions_total", "Watches cancelled because etcd compacted what they needed.",
              stats_.compactions);
  out.counter("regfs_etcd_events_total", "Key changes the watch delivered.", stats_.events);
  out.counter("regfs_etcd_lease_grants_total", "Leases granted to this node.", stats_.lease_grants);
  out.counter("regfs_etcd_leases_lost_total", "Leases of this node that expired.", stats_.leases_lost);
  out.counter("regfs_etcd_publishes_total", "Writes sent to etcd.", stats_.publishes);
  out.counter("regfs_etcd_publish_failures_total", "Writes etcd did not acknowledge in time.",
              stats_.publish_failures);
  out.gauge("regfs_etcd_reachable", "1 while an etcd member answers.", reachable_ ? 1 : 0);
  out.gauge("regfs_etcd_keys", "Valid instance keys under the prefix.", keys_.size());
  out.gauge("regfs_etcd_ignored_keys", "Keys under the prefix that are not regfs instances.", keys_.ignored());
  return out.take();
}

void EtcdStore::leave(std::function<void()> done) {
  stopping_ = true;
  ++session_;
  if (request_) request_->cancel();
  if (keepalive_req_) keepalive_req_->cancel();
  if (watch_) watch_->cancel();
  retry_timer_.cancel();
  keepalive_timer_.cancel();
  silence_timer_.cancel();
  if (lease_ != 0) {
    // Revoking the lease deletes every key of this node at once, everywhere.
    const auto deadline = std::chrono::steady_clock::now() + config_.write_timeout;
    for (std::size_t i = 0; i < config_.members.size(); ++i) {
      const auto now = std::chrono::steady_clock::now();
      if (now >= deadline) break;
      const auto& member = config_.members[(member_ + i) % config_.members.size()];
      auto r = post_now(member, "/v3/lease/revoke", lease_revoke_request(lease_), deadline - now);
      auto rev = parsed(r, parse_header_revision);
      if (rev || lease_missing(rev.error())) {
        spdlog::info("etcd: lease {:x} revoked", lease_);
        break;
      }
      spdlog::warn("etcd: cannot revoke lease {:x} on {}: {}", lease_, member, rev.error().detail);
    }
  }
  asio::post(io_, std::move(done));
}

}  // namespace regfs::etcd
