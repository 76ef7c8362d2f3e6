// regfsd's HTTP face (docs/INTERFACES.md, "The HTTP face"): the embedded page,
// /v1/status, /v1/events (Server-Sent Events), /metrics and /v1/health, with
// Boost.Beast on the daemon's own Asio loop.
//
// Nothing here blocks: every read and write is asynchronous and has a
// deadline, so a client can slow down only itself, never the FUSE requests
// served by the same loop. Everything is bounded: open connections, open
// streams, a request's header size, the time to send a request or take an
// answer, and how far one stream may fall behind (a stream further behind is
// closed, never buffered without bound: a stream takes the next changes from
// its feed subscription only once its previous write is done).
//
// Not thread-safe: the loop's thread calls everything, and the sources are
// called on it.
#pragma once

#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "core/change_feed.hpp"
#include "core/result.hpp"
#include "core/time.hpp"

namespace regfs::http {

// What the answers are made of; each is called when a request needs it.
struct Sources {
  std::function<std::string()> status;   // the .status.json document
  std::function<std::string()> metrics;  // the .metrics text
  std::function<bool()> ready;           // what /v1/health says
  // The changes /v1/events streams, each stream its own subscription. Must
  // outlive the server's stop() (which ends every subscription).
  ChangeFeed* feed = nullptr;
  Duration wall_offset{};  // system_clock minus the feed's clock, for event times
};

struct Limits {
  std::size_t max_clients = 256;  // open connections, streams included
  std::size_t max_streams = 128;  // open /v1/events streams
  // Changes a stream may be behind: one that falls further behind while its
  // last write is still not taken is closed (its client reconnects and reads
  // /v1/status again). At most the feed's history.
  std::size_t stream_lag = ChangeFeed::kDefaultHistory;
  std::size_t stream_batch = 256;  // changes in one write
  std::size_t header_limit = 8 * 1024;  // a request's start line and headers
  // To send a whole request (and, between requests on one connection, the
  // next), and to take an answer or one write of a stream.
  Duration request_timeout = seconds(10);
  Duration ping_interval = seconds(15);  // a comment on every stream: dead peers show
};

class Server {
 public:
  // Listens on `address` ("host:port", as Options::http holds it). `token`
  // empty: none asked for (routes.hpp says what it guards).
  static Result<std::unique_ptr<Server>> open(boost::asio::io_context& io, const std::string& address,
                                              std::string token, Limits limits, Sources sources);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // The address listened on, with the port the kernel chose for port 0.
  std::string address() const;
  // Prometheus text: connections, streams, refusals, drops.
  std::string metrics_text() const;
  // Closes the listener and every connection; later publishes do nothing.
  void stop();

  struct Impl;

 private:
  explicit Server(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;  // shared with the connections, which may outlive this
};

}  // namespace regfs::http
