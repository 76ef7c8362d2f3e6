#include "http.hpp"

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include "codec.hpp"
#include "core/host_port.hpp"

namespace regfs::etcd {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

namespace {

using PlainStream = beast::tcp_stream;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

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

// The stream of one connection, and what TLS adds to it: the member's
// certificate checked against the host as given, SNI for a host name, and
// the handshake. A verification failure is kept in `why` (OpenSSL's own
// error only says "certificate verify failed").
template <typename Stream>
Stream make_stream(asio::io_context& io, ssl::context* tls, const std::string& host,
                   std::string& why) {
  if constexpr (std::is_same_v<Stream, PlainStream>) {
    return PlainStream(io);
  } else {
    TlsStream stream(io, *tls);
    boost::system::error_code ec;
    asio::ip::make_address(host, ec);
    if (ec) {  // a name, not an address: SNI (SSL_set_tlsext_host_name, without its C cast)
      SSL_ctrl(stream.native_handle(), SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
               const_cast<char*>(host.c_str()));
    }
    stream.set_verify_mode(ssl::verify_peer);
    stream.set_verify_callback([host, &why](bool preverified, ssl::verify_context& ctx) {
      X509_STORE_CTX* store = ctx.native_handle();
      if (!preverified) {
        why = std::string("the member's certificate: ") +
              X509_verify_cert_error_string(X509_STORE_CTX_get_error(store));
        return false;
      }
      if (X509_STORE_CTX_get_error_depth(store) == 0 &&
          !ssl::host_name_verification(host)(true, ctx)) {
        why = "the member's certificate is not for " + host;
        return false;
      }
      return true;
    });
    return stream;
  }
}

template <typename Handler>
void handshake(PlainStream&, Handler&& handler) {
  handler(beast::error_code{});
}

template <typename Handler>
void handshake(TlsStream& stream, Handler&& handler) {
  stream.async_handshake(ssl::stream_base::client, std::forward<Handler>(handler));
}

void close(PlainStream& stream) {
  beast::error_code ec;
  stream.socket().shutdown(tcp::socket::shutdown_both, ec);
  stream.socket().close(ec);
}

void close(TlsStream& stream) { close(beast::get_lowest_layer(stream)); }

// An error's text; for the alert a member sends when it refuses the
// client's certificate (or its lack), what that means.
std::string describe(const beast::error_code& ec) {
  std::string text = ec.message();
  if (ec.category() == asio::error::get_ssl_category() && text.find("alert") != std::string::npos &&
      text.find("certificate") != std::string::npos) {
    text += " (the member refused this daemon's client certificate, or its lack: see --store-cert)";
  }
  return text;
}

std::string handshake_error(const beast::error_code& ec, const std::string& why) {
  return "TLS handshake: " + (why.empty() ? describe(ec) : why);
}

template <typename Stream>
class PostImpl final : public Post, public std::enable_shared_from_this<PostImpl<Stream>> {
 public:
  PostImpl(asio::io_context& io, std::string member, const std::string& path, std::string body,
           Duration timeout, Done done, const std::string& token, ssl::context* tls)
      : resolver_(io),
        member_(std::move(member)),
        stream_(make_stream<Stream>(io, tls, split(member_).first, verify_error_)),
        req_(make_request(member_, path, std::move(body), token)),
        timeout_(std::chrono::duration_cast<std::chrono::steady_clock::duration>(timeout)),
        done_(std::move(done)) {
    parser_.body_limit(kMaxBody);
  }

  void run() {
    auto [host, port] = split(member_);
    beast::get_lowest_layer(stream_).expires_after(timeout_);
    // A name's look-up is outside the stream's deadline (members are
    // normally given as addresses, which resolve at once).
    resolver_.async_resolve(host, port, [self = this->shared_from_this()](
                                            const beast::error_code& ec,
                                            const tcp::resolver::results_type& r) {
      if (ec) return self->finish(failed(self->member_, "resolve: " + ec.message()));
      beast::get_lowest_layer(self->stream_).async_connect(r, [self](const beast::error_code& ec2,
                                                                     const tcp::endpoint&) {
        if (ec2) return self->finish(failed(self->member_, "connect: " + ec2.message()));
        handshake(self->stream_, [self](const beast::error_code& ec3) {
          if (ec3) return self->finish(failed(self->member_, handshake_error(ec3, self->verify_error_)));
          self->send();
        });
      });
    });
  }

  void cancel() override {
    done_ = nullptr;
    resolver_.cancel();
    close(stream_);
  }

 private:
  void send() {
    http::async_write(stream_, req_, [self = this->shared_from_this()](const beast::error_code& ec,
                                                                        std::size_t) {
      if (ec) return self->finish(failed(self->member_, "send: " + describe(ec)));
      http::async_read(self->stream_, self->buffer_, self->parser_,
                       [self](const beast::error_code& ec2, std::size_t) {
        if (ec2) return self->finish(failed(self->member_, "reply: " + describe(ec2)));
        auto& res = self->parser_.get();
        self->finish(Reply{res.result_int(), std::move(res.body())});
      });
    });
  }

  void finish(Result<Reply> r) {
    if (!done_) return;
    auto done = std::move(done_);
    done_ = nullptr;
    close(stream_);
    done(std::move(r));
  }

  tcp::resolver resolver_;
  std::string member_;
  std::string verify_error_;  // before stream_: its verify callback writes here
  Stream stream_;
  http::request<http::string_body> req_;
  std::chrono::steady_clock::duration timeout_;
  Done done_;
  beast::flat_buffer buffer_;
  http::response_parser<http::string_body> parser_;
};

template <typename Stream>
class WatchImpl final : public Watch, public std::enable_shared_from_this<WatchImpl<Stream>> {
 public:
  WatchImpl(asio::io_context& io, std::string member, std::string body, Duration connect_timeout,
            OnLine on_line, OnEnd on_end, const std::string& token, ssl::context* tls)
      : resolver_(io),
        member_(std::move(member)),
        stream_(make_stream<Stream>(io, tls, split(member_).first, verify_error_)),
        req_(make_request(member_, "/v3/watch", std::move(body), token)),
        timeout_(std::chrono::duration_cast<std::chrono::steady_clock::duration>(connect_timeout)),
        on_line_(std::move(on_line)),
        on_end_(std::move(on_end)),
        splitter_(kMaxBody) {
    parser_.body_limit(boost::none);  // the stream is unbounded; each line is bounded
  }

  void run() {
    auto [host, port] = split(member_);
    beast::get_lowest_layer(stream_).expires_after(timeout_);
    resolver_.async_resolve(host, port, [self = this->shared_from_this()](
                                            const beast::error_code& ec,
                                            const tcp::resolver::results_type& r) {
      if (ec) return self->end("resolve: " + ec.message());
      beast::get_lowest_layer(self->stream_).async_connect(r, [self](const beast::error_code& ec2,
                                                                     const tcp::endpoint&) {
        if (ec2) return self->end("connect: " + ec2.message());
        handshake(self->stream_, [self](const beast::error_code& ec3) {
          if (ec3) return self->end(handshake_error(ec3, self->verify_error_));
          self->send();
        });
      });
    });
  }

  void cancel() override {
    on_line_ = nullptr;
    on_end_ = nullptr;
    resolver_.cancel();
    close(stream_);
  }

 private:
  void send() {
    http::async_write(stream_, req_, [self = this->shared_from_this()](const beast::error_code& ec,
                                                                        std::size_t) {
      if (ec) return self->end("send: " + describe(ec));
      http::async_read_header(self->stream_, self->buffer_, self->parser_,
                              [self](const beast::error_code& ec2, std::size_t) {
        if (ec2) return self->end("reply: " + describe(ec2));
        if (self->parser_.get().result_int() != 200) {
          return self->end("reply: HTTP " + std::to_string(self->parser_.get().result_int()));
        }
        beast::get_lowest_layer(self->stream_).expires_never();
        self->read_more();
      });
    });
  }

  void read_more() {
    if (parser_.is_done()) return end("the server ended the stream");
    parser_.get().body().data = chunk_.data();
    parser_.get().body().size = chunk_.size();
    http::async_read_some(stream_, buffer_, parser_,
                          [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
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
                                   : "read: " + describe(ec));
      self->read_more();
    });
  }

  void end(const std::string& why) {
    if (!on_end_) return;
    auto on_end = std::move(on_end_);
    on_end_ = nullptr;
    on_line_ = nullptr;
    close(stream_);
    on_end(why);
  }

  tcp::resolver resolver_;
  std::string member_;
  std::string verify_error_;  // before stream_: its verify callback writes here
  Stream stream_;
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
                                  Done done, const std::string& token, ssl::context* tls) {
  if (tls != nullptr) {
    auto p = std::make_shared<PostImpl<TlsStream>>(io, member, path, std::move(body), timeout,
                                                   std::move(done), token, tls);
    p->run();
    return p;
  }
  auto p = std::make_shared<PostImpl<PlainStream>>(io, member, path, std::move(body), timeout,
                                                   std::move(done), token, tls);
  p->run();
  return p;
}

std::shared_ptr<Watch> Watch::start(asio::io_context& io, const std::string& member,
                                    std::string body, Duration connect_timeout, OnLine on_line,
                                    OnEnd on_end, const std::string& token, ssl::context* tls) {
  if (tls != nullptr) {
    auto w = std::make_shared<WatchImpl<TlsStream>>(io, member, std::move(body), connect_timeout,
                                                    std::move(on_line), std::move(on_end), token, tls);
    w->run();
    return w;
  }
  auto w = std::make_shared<WatchImpl<PlainStream>>(io, member, std::move(body), connect_timeout,
                                                    std::move(on_line), std::move(on_end), token, tls);
  w->run();
  return w;
}

}  // namespace regfs::etcd
