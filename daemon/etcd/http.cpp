#include "http.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "codec.hpp"
#include "core/host_port.hpp"

namespace regfs::etcd {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

Error failed(const std::string& member, const std::string& what) {
  return Error{Errc::io, "etcd " + member + ": " + what};
}

http::request<http::string_body> make_request(const std::string& member, const std::string& path,
                                              std::string body, const std::string& token) {
  http::request<http::string_body> req{http::verb::post, path, 11};
  req.set(http::field::host, member);
  if (!token.empty()) req.set(http::field::authorization, token);
  req.set(http::field::content_type, "application/json");
  req.body() = std::move(body);
  req.prepare_payload();
  return req;
}

// host:port split for the resolver; brackets around IPv6 hosts dropped.
std::pair<std::string, std::string> split(const std::string& member) {
  if (auto hp = HostPort::parse(member)) return {hp->host, std::to_string(hp->port)};
  return {member, ""};
}

class PostImpl final : public Post, public std::enable_shared_from_this<PostImpl> {
 public:
  PostImpl(asio::io_context& io, std::string member, const std::string& path, std::string body,
           Duration timeout, Done done, const std::string& token)
      : resolver_(io),
        stream_(io),
        member_(std::move(member)),
        req_(make_request(member_, path, std::move(body), token)),
        timeout_(std::chrono::duration_cast<std::chrono::steady_clock::duration>(timeout)),
        done_(std::move(done)) {
    parser_.body_limit(kMaxBody);
  }

  void run() {
    auto [host, port] = split(member_);
    stream_.expires_after(timeout_);
    // A name's look-up is outside the stream's deadline (members are
    // normally given as addresses, which resolve at once).
    resolver_.async_resolve(host, port, [self = shared_from_this()](
                                            const beast::error_code& ec,
                                            const tcp::resolver::results_type& r) {
      if (ec) return self->finish(failed(self->member_, "resolve: " + ec.message()));
      self->stream_.async_connect(r, [self](const beast::error_code& ec2, const tcp::endpoint&) {
        if (ec2) return self->finish(failed(self->member_, "connect: " + ec2.message()));
        http::async_write(self->stream_, self->req_,
                          [self](const beast::error_code& ec3, std::size_t) {
          if (ec3) return self->finish(failed(self->member_, "send: " + ec3.message()));
          http::async_read(self->stream_, self->buffer_, self->parser_,
                           [self](const beast::error_code& ec4, std::size_t) {
            if (ec4) return self->finish(failed(self->member_, "reply: " + ec4.message()));
            auto& res = self->parser_.get();
            self->finish(Reply{res.result_int(), std::move(res.body())});
          });
        });
      });
    });
  }

  void cancel() override {
    done_ = nullptr;
    resolver_.cancel();
    beast::error_code ec;
    stream_.socket().close(ec);
  }

 private:
  void finish(Result<Reply> r) {
    if (!done_) return;
    auto done = std::move(done_);
    done_ = nullptr;
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.socket().close(ec);
    done(std::move(r));
  }

  tcp::resolver resolver_;
  beast::tcp_stream stream_;
  std::string member_;
  http::request<http::string_body> req_;
  std::chrono::steady_clock::duration timeout_;
  Done done_;
  beast::flat_buffer buffer_;
  http::response_parser<http::string_body> parser_;
};

class WatchImpl final : public Watch, public std::enable_shared_from_this<WatchImpl> {
 public:
  WatchImpl(asio::io_context& io, std::string member, std::string body, Duration connect_timeout,
            OnLine on_line, OnEnd on_end, const std::string& token)
      : resolver_(io),
        stream_(io),
        member_(std::move(member)),
        req_(make_request(member_, "/v3/watch", std::move(body), token)),
        timeout_(std::chrono::duration_cast<std::chrono::steady_clock::duration>(connect_timeout)),
        on_line_(std::move(on_line)),
        on_end_(std::move(on_end)),
        splitter_(kMaxBody) {
    parser_.body_limit(boost::none);  // the stream is unbounded; each line is bounded
  }

  void run() {
    auto [host, port] = split(member_);
    stream_.expires_after(timeout_);
    resolver_.async_resolve(host, port, [self = shared_from_this()](
                                            const beast::error_code& ec,
                                            const tcp::resolver::results_type& r) {
      if (ec) return self->end("resolve: " + ec.message());
      self->stream_.async_connect(r, [self](const beast::error_code& ec2, const tcp::endpoint&) {
        if (ec2) return self->end("connect: " + ec2.message());
        http::async_write(self->stream_, self->req_, [self](const beast::error_code& ec3, std::size_t) {
          if (ec3) return self->end("send: " + ec3.message());
          http::async_read_header(self->stream_, self->buffer_, self->parser_,
                                  [self](const beast::error_code& ec4, std::size_t) {
            if (ec4) return self->end("reply: " + ec4.message());
            if (self->parser_.get().result_int() != 200) {
              return self->end("reply: HTTP " + std::to_string(self->parser_.get().result_int()));
            }
            self->stream_.expires_never();
            self->read_more();
          });
        });
      });
    });
  }

  void cancel() override {
    on_line_ = nullptr;
    on_end_ = nullptr;
    resolver_.cancel();
    beast::error_code ec;
    stream_.socket().close(ec);
  }

 private:
  void read_more() {
    if (parser_.is_done()) return end("the server ended the stream");
    parser_.get().body().data = chunk_.data();
    parser_.get().body().size = chunk_.size();
    http::async_read_some(stream_, buffer_, parser_,
                          [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec == http::error::need_buffer) ec = {};
      const std::size_t got = self->chunk_.size() - self->parser_.get().body().size;
      if (got > 0 && self->on_line_) {
        std::vector<std::string> lines;
        if (!self->splitter_.feed(std::string_view(self->chunk_.data(), got), lines)) {
          return self->end("a line over " + std::to_string(kMaxBody) + " bytes");
        }
        for (auto& line : lines) {
          if (!self->on_line_) return;  // cancelled by a line's handler
          self->on_line_(std::move(line));
        }
      }
      if (ec) return self->end(ec == http::error::end_of_stream || ec == asio::error::eof
                                   ? "the server closed the stream"
                                   : "read: " + ec.message());
      self->read_more();
    });
  }

  void end(const std::string& why) {
    if (!on_end_) return;
    auto on_end = std::move(on_end_);
    on_end_ = nullptr;
    on_line_ = nullptr;
    beast::error_code ec;
    stream_.socket().close(ec);
    on_end(why);
  }

  tcp::resolver resolver_;
  beast::tcp_stream stream_;
  std::string member_;
  http::request<http::string_body> req_;
  std::chrono::steady_clock::duration timeout_;
  OnLine on_line_;
  OnEnd on_end_;
  LineSplitter splitter_;
  beast::flat_buffer buffer_;
  http::response_parser<http::buffer_body> parser_;
  std::array<char, 16384> chunk_{};
};

}  // namespace

std::shared_ptr<Post> Post::start(asio::io_context& io, const std::string& member,
                                  const std::string& path, std::string body, Duration timeout,
                                  Done done, const std::string& token) {
  auto p = std::make_shared<PostImpl>(io, member, path, std::move(body), timeout, std::move(done),
                                      token);
  p->run();
  return p;
}

std::shared_ptr<Watch> Watch::start(asio::io_context& io, const std::string& member,
                                    std::string body, Duration connect_timeout, OnLine on_line,
                                    OnEnd on_end, const std::string& token) {
  auto w = std::make_shared<WatchImpl>(io, member, std::move(body), connect_timeout,
                                       std::move(on_line), std::move(on_end), token);
  w->run();
  return w;
}

}  // namespace regfs::etcd
