#include "server.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <optional>
#include <set>
#include <spdlog/spdlog.h>
#include <vector>

#include "core/host_port.hpp"
#include "core/prometheus.hpp"
#include "page.hpp"
#include "routes.hpp"

namespace regfs::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

namespace {

class Connection;

// The answer to a client over the limit, sent without waiting: it fits any
// fresh socket's send buffer.
constexpr std::string_view kTooManyClients =
    "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 17\r\n"
    "Connection: close\r\nRetry-After: 1\r\n\r\ntoo many clients\n";

constexpr std::string_view kStreamHead =
    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\n"
    "X-Accel-Buffering: no\r\nConnection: close\r\n\r\nretry: 1000\n\n";

// How long a connection that was answered and told it ends may still send.
constexpr Duration kLinger = seconds(2);

// A stream's kernel send buffer: small, so that a reader that stops reading
// is found out by the stream's own queue bound rather than hidden in the kernel.
constexpr int kStreamSendBuffer = 32 * 1024;

}  // namespace

struct Server::Impl : std::enable_shared_from_this<Server::Impl> {
  Impl(asio::io_context& context, std::string bearer, Limits bounds, Sources from)
      : acceptor(context), ping(context), token(std::move(bearer)), limits(bounds),
        sources(std::move(from)) {}

  void accept();
  void arm_ping();
  // Closes the streams a whole feed history behind while a write waits.
  void drop_laggards();
  void watch_feed();  // subscribes `watch` if it is not yet

  tcp::acceptor acceptor;
  asio::steady_timer ping;
  std::string token;
  Limits limits;
  Sources sources;
  bool stopped = false;
  std::set<Connection*> connections;  // every open one; each removes itself when destroyed
  std::set<Connection*> streams;      // those streaming /v1/events
  ChangeFeed::Subscription watch;     // wakes drop_laggards on changes while streams are open

  std::uint64_t accepted = 0;
  std::uint64_t refused_clients = 0;
  std::uint64_t refused_streams = 0;
  std::uint64_t requests = 0;
  std::uint64_t bad_requests = 0;
  std::uint64_t unauthorized = 0;
  std::uint64_t streams_dropped = 0;
  std::uint64_t timeouts = 0;  // a request begun and not whole, or an answer not taken, in time
  std::uint64_t events = 0;
  // Changes streams lost by falling behind: told as missed, or not yet taken
  // when the stream was dropped.
  std::uint64_t missed = 0;
};

namespace {

// One client: requests answered one at a time (keep-alive), or, once it asks
// for /v1/events, a stream until either side closes it.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(std::shared_ptr<Server::Impl> server, tcp::socket socket)
      : server_(std::move(server)), stream_(std::move(socket)) {
    server_->connections.insert(this);
  }
  ~Connection() {
    server_->connections.erase(this);
    server_->streams.erase(this);
  }

  void start() { read_request(); }

  void close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.socket().close(ignored);
    server_->streams.erase(this);
    sub_.reset();
  }

  // Ends the connection after its last answer without losing it: a close with
  // unread bytes would reset the connection and the client might never read
  // the answer, so what the client still sends is read and dropped until it
  // closes too, for at most kLinger.
  void linger() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.expires_after(kLinger);
    stream_.async_read_some(asio::buffer(sink_), [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) return self->close();
      self->linger();
    });
  }

  // A stream whose write waits while a whole feed history arrived behind it.
  bool lagging() const { return writing_ && sub_ && sub_.pending() > server_->limits.stream_lag; }

  void drop(const char* why) {
    ++server_->streams_dropped;
    server_->missed += sub_.pending();
    spdlog::info("http: closing the stream to {}: {}", peer_, why);
    close();
  }

  // Writes `extra` (a ping) or, when the previous write is done, the next
  // changes: the stream holds at most one write's bytes.
  void pump(std::string_view extra = {}) {
    if (writing_ || !sub_ || !stream_.socket().is_open()) return;
    out_.clear();
    auto batch = sub_.take(server_->limits.stream_batch);
    if (batch.missed > 0) {
      server_->missed += batch.missed;
      out_ = sse_event(trimmed(missed_json_line(batch.missed)));
      writing_ = true;
      return write(true);
    }
    for (const auto& e : batch.events) out_ += sse_event(trimmed(to_json_line(e, server_->sources.wall_offset)));
    server_->events += batch.events.size();
    if (out_.empty()) out_ = extra;
    if (out_.empty()) return;
    writing_ = true;
    write(false);
  }

 private:
  static std::string_view trimmed(const std::string& line) {
    std::string_view v(line);
    while (!v.empty() && (v.back() == '\n' || v.back() == '\r')) v.remove_suffix(1);
    return v;
  }

  void write(bool last) {
    stream_.expires_after(server_->limits.request_timeout);
    asio::async_write(stream_, asio::buffer(out_),
                      [self = shared_from_this(), last](beast::error_code ec, std::size_t) {
                        self->writing_ = false;
                        if (ec == beast::error::timeout) return self->drop("a write not taken in time");
                        if (ec) return self->close();
                        if (last) return self->drop("more than a feed history behind");
                        self->stream_.expires_never();
                        self->pump();
                      });
  }

 private:
  void read_request() {
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(server_->limits.header_limit));
    parser_->body_limit(0);
    stream_.expires_after(server_->limits.request_timeout);
    bhttp::async_read(stream_, buffer_, *parser_,
                      [self = shared_from_this()](beast::error_code ec, std::size_t) {
                        self->on_request(ec);
                      });
  }

  void on_request(beast::error_code ec) {
    // A request begun and not whole in time is counted; a connection that
    // sent nothing of its next request (an idle keep-alive one) is closed
    // the same way, uncounted.
    if (ec == beast::error::timeout && parser_->got_some()) ++server_->timeouts;
    if (ec == bhttp::error::end_of_stream || ec == beast::error::timeout ||
        ec == asio::error::operation_aborted || ec == asio::error::connection_reset ||
        ec == asio::error::eof || !stream_.socket().is_open()) {
      return close();
    }
    ++server_->requests;
    if (ec) {  // malformed, headers too long, a body
      ++server_->bad_requests;
      return respond(400, "text/plain", "bad request: " + ec.message() + "\n", false, false);
    }
    const auto& req = parser_->get();
    const auto authorization = req[bhttp::field::authorization];
    const auto decision = decide(std::string_view(req.method_string().data(), req.method_string().size()),
                                 std::string_view(req.target().data(), req.target().size()),
                                 std::string_view(authorization.data(), authorization.size()),
                                 server_->token);
    const bool head = req.method() == bhttp::verb::head;
    const bool keep = req.keep_alive();
    switch (decision.route) {
      case Route::refused:
        if (decision.code == 401) ++server_->unauthorized;
        return respond(decision.code, "text/plain", decision.reason + "\n", keep, head);
      case Route::page:
        return respond(200, "text/html; charset=utf-8", std::string(page_html()), keep, head);
      case Route::status:
        return respond(200, "application/json", server_->sources.status(), keep, head);
      case Route::metrics:
        return respond(200, "text/plain; version=0.0.4; charset=utf-8", server_->sources.metrics(),
                       keep, head);
      case Route::health: {
        const bool ready = server_->sources.ready();
        return respond(ready ? 200 : 503, "application/json",
                       ready ? "{\"ready\":true}\n" : "{\"ready\":false}\n", keep, head);
      }
      case Route::events:
        if (head) return respond(200, "text/event-stream", "", false, true);
        return start_stream();
    }
  }

  void respond(int code, const char* type, std::string body, bool keep, bool head) {
    auto res = std::make_shared<bhttp::response<bhttp::string_body>>(
        static_cast<bhttp::status>(code), 11);
    res->set(bhttp::field::content_type, type);
    res->set(bhttp::field::cache_control, "no-store");
    res->set(bhttp::field::server, "regfsd");
    res->set("X-Content-Type-Options", "nosniff");
    if (code == 401) res->set(bhttp::field::www_authenticate, "Bearer");
    if (code == 503) res->set(bhttp::field::retry_after, "1");
    res->keep_alive(keep);
    const auto size = body.size();
    if (!head) res->body() = std::move(body);
    res->content_length(size);
    stream_.expires_after(server_->limits.request_timeout);
    bhttp::async_write(stream_, *res, [self = shared_from_this(), res](beast::error_code ec, std::size_t) {
      if (ec == beast::error::timeout) ++self->server_->timeouts;
      if (ec) return self->close();
      if (!res->keep_alive()) return self->linger();
      self->read_request();
    });
  }

  void start_stream() {
    if (server_->sources.feed == nullptr) {
      return respond(503, "text/plain", "no change feed\n", false, false);
    }
    if (server_->streams.size() >= server_->limits.max_streams) {
      ++server_->refused_streams;
      return respond(503, "text/plain", "too many streams\n", false, false);
    }
    server_->streams.insert(this);
    server_->watch_feed();
    beast::error_code ignored;
    stream_.socket().set_option(asio::socket_base::send_buffer_size(kStreamSendBuffer), ignored);
    peer_ = remote();
    // The subscription ends with the connection (close() or the destructor);
    // the raw pointer in `notify` cannot outlive it.
    sub_ = server_->sources.feed->subscribe(server_->limits.stream_lag, [this] { pump(); });
    // What the peer sends from now on is not read; a read ends when it closes.
    stream_.expires_never();
    stream_.async_read_some(asio::buffer(sink_),
                            [self = shared_from_this()](beast::error_code, std::size_t) { self->close(); });
    out_ = kStreamHead;
    writing_ = true;
    write(false);
  }

  std::string remote() const {
    beast::error_code ec;
    const auto ep = stream_.socket().remote_endpoint(ec);
    return ec ? std::string("a closed peer") : ep.address().to_string() + ":" + std::to_string(ep.port());
  }

  std::shared_ptr<Server::Impl> server_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_{8 * 1024};
  std::optional<bhttp::request_parser<bhttp::empty_body>> parser_;
  ChangeFeed::Subscription sub_;  // a stream's changes, taken one write at a time
  std::string out_;               // the stream's write under way
  bool writing_ = false;
  std::string peer_;
  char sink_[64] = {};
};

}  // namespace

void Server::Impl::accept() {
  acceptor.async_accept([self = shared_from_this()](beast::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || self->stopped) return;
    if (!ec) {
      ++self->accepted;
      if (self->connections.size() >= self->limits.max_clients) {
        ++self->refused_clients;
        beast::error_code ignored;
        socket.non_blocking(true, ignored);
        socket.write_some(asio::buffer(kTooManyClients), ignored);
        // What the client sent already is read, so that the close does not
        // reset the connection before the client reads the answer.
        char drain[4096];
        socket.read_some(asio::buffer(drain), ignored);
        socket.shutdown(tcp::socket::shutdown_both, ignored);
        socket.close(ignored);
      } else {
        std::make_shared<Connection>(self, std::move(socket))->start();
      }
    } else {
      spdlog::warn("http: accept: {}", ec.message());  // EMFILE and the like: try again
    }
    self->accept();
  });
}

void Server::Impl::arm_ping() {
  ping.expires_after(limits.ping_interval);
  ping.async_wait([self = shared_from_this()](beast::error_code ec) {
    if (ec || self->stopped) return;
    const std::vector<Connection*> now(self->streams.begin(), self->streams.end());
    for (Connection* c : now) {
      if (self->streams.contains(c)) c->pump(": ping\n\n");
    }
    self->arm_ping();
  });
}

void Server::Impl::watch_feed() {
  if (watch || sources.feed == nullptr) return;
  watch = sources.feed->subscribe(1, [this] {
    watch.take();
    drop_laggards();
    if (streams.empty()) watch.reset();  // no stream: nothing to watch
  });
}

void Server::Impl::drop_laggards() {
  // drop() leaves `streams`: walk a copy.
  const std::vector<Connection*> now(streams.begin(), streams.end());
  for (Connection* c : now) {
    if (streams.contains(c) && c->lagging()) c->drop("more than a feed history behind");
  }
}

Result<std::unique_ptr<Server>> Server::open(asio::io_context& io, const std::string& address,
                                             std::string token, Limits limits, Sources sources) {
  const auto hp = HostPort::parse(address);
  auto failed = [&](const std::string& why) {
    return Error{Errc::io, "--http " + address + ": " + why};
  };
  if (!hp) return failed(hp.error().detail);
  beast::error_code ec;
  const auto ip = asio::ip::make_address(hp->host, ec);
  if (ec) return failed("not an IP address");
  auto impl = std::make_shared<Impl>(io, std::move(token), limits, std::move(sources));
  const tcp::endpoint endpoint(ip, hp->port);
  impl->acceptor.open(endpoint.protocol(), ec);
  if (!ec) impl->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl->acceptor.bind(endpoint, ec);
  if (!ec) impl->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return failed(ec.message());
  impl->accept();
  impl->arm_ping();
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

Server::Server(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

Server::~Server() { stop(); }

std::string Server::address() const {
  beast::error_code ec;
  const auto ep = impl_->acceptor.local_endpoint(ec);
  if (ec) return "closed";
  return HostPort{ep.address().to_string(), ep.port()}.to_string();
}

void Server::stop() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  beast::error_code ignored;
  impl_->acceptor.close(ignored);
  impl_->ping.cancel();
  impl_->watch.reset();
  const std::vector<Connection*> open(impl_->connections.begin(), impl_->connections.end());
  for (Connection* c : open) c->close();
}

std::string Server::metrics_text() const {
  const Impl& s = *impl_;
  PrometheusText t;
  t.gauge("regfs_http_clients", "Open HTTP connections, streams included.", s.connections.size());
  t.gauge("regfs_http_streams", "Open /v1/events streams.", s.streams.size());
  t.counter("regfs_http_requests_total", "HTTP requests read, malformed ones included.", s.requests);
  t.counter("regfs_http_bad_requests_total", "HTTP requests refused as malformed (400).", s.bad_requests);
  t.counter("regfs_http_unauthorized_total", "HTTP requests refused for a missing or wrong token (401).",
            s.unauthorized);
  t.counter("regfs_http_refused_clients_total", "HTTP connections refused over --http-max-clients.",
            s.refused_clients);
  t.counter("regfs_http_refused_streams_total", "/v1/events requests refused over --http-max-streams.",
            s.refused_streams);
  t.counter("regfs_http_streams_dropped_total",
            "/v1/events streams closed for falling a feed history behind or not taking a write.",
            s.streams_dropped);
  t.counter("regfs_http_timeouts_total",
            "HTTP connections closed for a request begun but not whole, or an answer not taken, "
            "within 10 s.",
            s.timeouts);
  t.counter("regfs_http_events_total", "Changes written to /v1/events streams (per stream).", s.events);
  t.counter("regfs_http_events_missed_total",
            "Changes /v1/events streams lost by falling behind (per stream): told as missed, or "
            "not yet taken when the stream was closed for it.",
            s.missed);
  return t.take();
}

}  // namespace regfs::http
