#include "cluster_driver.hpp"

#include <spdlog/spdlog.h>

#include "core/prometheus.hpp"
#include "registrar.hpp"  // steady_now

namespace regfs {

namespace asio = boost::asio;

// The transport's seal must fit in what the wire format leaves of a datagram.
static_assert(transport::kSealOverhead <= cluster::kSealReserve);

namespace {
constexpr auto kLeaveLinger = std::chrono::milliseconds(300);
}  // namespace

ClusterDriver::ClusterDriver(asio::io_context& io, RemoteSink& sink, cluster::Config config,
                             cluster::NodeId self, std::string gossip_addr,
                             std::unique_ptr<transport::Transport> transport, std::uint64_t seed)
    : io_(io),
      sink_(sink),
      core_(config, self, cluster::PeerAddr{gossip_addr}, seed, steady_now()),
      gossip_addr_(std::move(gossip_addr)),
      transport_(std::move(transport)),
      timer_(io) {
  transport_->set_advertised(gossip_addr_);
}

ClusterDriver::~ClusterDriver() {
  timer_.cancel();
  transport_->close();
}

void ClusterDriver::start() { pump(); }

void ClusterDriver::restore(const std::string& service, const std::vector<InstanceSpec>& instances) {
  (void)publish(service, instances);
}

Status ClusterDriver::publish(const std::string& service,
                              const std::vector<InstanceSpec>& instances) {
  if (auto st = core_.set_service(steady_now(), service, instances); !st) {
    spdlog::warn("cluster: cannot replicate {}: {}", service, st.error().detail);
  }
  // A fresh rumor is due at once: send it now rather than from the timer.
  core_.tick(steady_now());
  pump();
  return ok_status();
}

void ClusterDriver::deliver(const std::string& from, bool /*stream*/,
                            std::span<const std::uint8_t> frame) {
  core_.handle(steady_now(), cluster::PeerAddr{from}, frame);
  pump();
}

void ClusterDriver::pump() {
  std::vector<transport::Transport::Datagram> packets;
  for (auto& out : core_.take_outgoing()) {
    if (out.channel == cluster::Channel::stream) {
      transport_->send_stream(out.to.value, std::move(out.bytes));
    } else {
      packets.push_back({std::move(out.to.value), std::move(out.bytes)});
    }
  }
  if (!packets.empty()) transport_->send_packets(std::move(packets));
  const cluster::Events events = core_.take_events();
  if (events.generation != 0) {
    spdlog::warn("cluster: this node starts a new life at generation {} (a life of its name was "
                 "known at or above the previous one)", events.generation);
    if (on_new_life) on_new_life(events.generation);
  }
  for (const auto& change : events.services) {
    if (change.origin == core_.self().name) continue;
    const auto* specs = core_.instances(change.origin, change.service);
    sink_.apply_remote(change.service, change.origin,
                            specs != nullptr ? *specs : std::vector<InstanceSpec>{});
  }
  for (const auto& m : events.members) {
    if (m.id.name == core_.self().name) continue;
    if (m.state == cluster::MemberState::suspect) ++suspicions_;
    spdlog::info("member {} ({}) is {} (incarnation {})", m.id.name, m.addr.value,
                 cluster::to_string(m.state), m.incarnation);
  }
  warn_stale();
  if (!stopping_) schedule();
}

void ClusterDriver::schedule() {
  const Time next = core_.next_deadline();
  // Re-arming costs a system call, and this runs after every packet. A wait
  // already armed for no later than `next` stands: waking early is harmless
  // (the tick does what is due, and this runs again).
  if (armed_ && armed_for_ <= next) return;
  armed_ = true;
  armed_for_ = next;
  const Duration wait = std::max(next - steady_now(), Duration::zero());
  timer_.expires_after(wait);
  timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || stopping_) return;  // aborted: a re-arm replaced this wait
    armed_ = false;
    core_.tick(steady_now());
    pump();
  });
}

void ClusterDriver::leave(std::function<void()> done) {
  core_.leave(steady_now());
  pump();
  // Keep delivering and ticking briefly so the goodbye spreads.
  auto linger = std::make_shared<asio::steady_timer>(io_, kLeaveLinger);
  linger->async_wait([this, linger, done = std::move(done)](const boost::system::error_code&) {
    stopping_ = true;
    timer_.cancel();
    transport_->close();
    done();
  });
}

void ClusterDriver::join(const std::string& addr) {
  if (stopping_ || addr == gossip_addr_ || !seeds_.insert(addr).second) return;
  core_.join(steady_now(), {cluster::PeerAddr{addr}});
  pump();
}

void ClusterDriver::warn_stale() {
  const auto& t = transport_->stats();
  if (t.stale == stale_seen_) return;
  spdlog::warn("cluster: {} datagrams refused for their time stamp, the latest from {} stamped {} ms "
               "from this node's clock (tolerance {} ms): are the clocks synchronised?",
               t.stale - stale_seen_, t.last_stale_from, t.last_stale_skew_ms,
               transport::kClockToleranceMs);
  stale_seen_ = t.stale;
}

std::vector<MemberView> ClusterDriver::members() const {
  std::vector<MemberView> out;
  for (const auto& m : core_.members()) {
    out.push_back(MemberView{m.id.name, m.addr.value, cluster::to_string(m.state), m.incarnation,
                             m.id.generation, m.id.name == core_.self().name, m.heard});
  }
  return out;
}

std::string ClusterDriver::metrics_text() const {
  const auto& c = core_.stats();
  const auto& t = transport_->stats();
  PrometheusText out;
  auto counter = [&out](const char* name, const char* help, std::uint64_t v) {
    out.counter(std::string("regfs_") + name, help, v);
  };
  counter("cluster_frames_in_total", "Frames the cluster core handled.", c.frames_in);
  counter("cluster_frames_out_total", "Frames the cluster core sent.", c.frames_out);
  counter("cluster_bad_frames_total", "Frames the core could not decode.", c.bad_frames);
  counter("cluster_probes_total", "Failure-detection probes.", c.probes);
  counter("cluster_probe_failures_total", "Probes that got no ack.", c.probe_failures);
  counter("cluster_refutations_total", "Suspicions of this node it refuted.", c.refutations);
  counter("cluster_suspicions_total", "Members this node saw become suspect.", suspicions_);
  counter("cluster_syncs_total", "Push-pull exchanges started.", c.syncs_started);
  counter("net_packets_in_total", "UDP datagrams received.", t.packets_in);
  counter("net_packets_out_total", "UDP datagrams sent.", t.packets_out);
  counter("net_streams_in_total", "TCP state exchanges received.", t.streams_in);
  counter("net_streams_out_total", "TCP state exchanges sent.", t.streams_out);
  counter("net_bytes_in_total", "Bytes received.", t.bytes_in);
  counter("net_bytes_out_total", "Bytes sent.", t.bytes_out);
  counter("net_auth_failures_total", "Frames that failed authentication.", t.auth_failures);
  counter("net_dropped_total", "Frames dropped: oversized, malformed, or failed to send.", t.dropped);
  counter("net_replays_total", "Authentic datagrams refused because they arrived before.", t.replays);
  counter("net_stale_total", "Authentic datagrams refused: stamped over 60 s from this node's clock.",
          t.stale);
  counter("net_streams_refused_total", "TCP exchanges closed at a connection limit.", t.streams_refused);
  counter("net_stream_timeouts_total", "TCP exchanges that did not complete in time.", t.stream_timeouts);
  counter("net_accept_errors_total", "TCP accepts that failed (e.g. out of descriptors).", t.accept_errors);
  counter("net_packets_rate_limited_total",
          "UDP datagrams dropped: their source address was over its rate.", t.packets_rate_limited);
  counter("net_streams_rate_limited_total",
          "TCP connections closed: their source address was over its rate.", t.streams_rate_limited);
  counter("cluster_instances_refused_total",
          "Entries refused: their origin was at its cap of instances.",
          core_.store().refused_over_cap());
  counter("net_keyring_reloads_total", "Keyrings re-read from --key-file on SIGHUP.",
          t.keyring_reloads);
  out.gauge("regfs_net_streams_open", "Inbound TCP exchanges in progress.", t.streams_open);
  out.gauge("regfs_net_keys", "Keys in the keyring (0: frames in the clear).", transport_->keys());
  out.gauge("regfs_cluster_members", "Members alive or suspect, this node included.",
            core_.live_members());
  return out.take();
}

}  // namespace regfs
