// HTTP/1.1 to etcd's JSON gateway with Boost.Beast: one POST per connection
// with a deadline, and the watch, one long-lived chunked response read line
// by line. Over plain TCP, or over TLS when given a client context
// (tls.hpp): the member's certificate must chain to the context's CAs and
// name the member's host (its IP address or DNS name as given in the store
// URL), and the host name goes in SNI. A connection ends by closing the
// socket, without TLS's close_notify (every request is complete by then).
//
// Each operation runs on the io_context it is given and calls its callback
// exactly once (the watch: `on_line` any number of times, then `on_end`
// once), never before returning, and never after cancel() returned.
#pragma once

#include <boost/asio/io_context.hpp>
#include <functional>
#include <memory>
#include <string>

#include "core/result.hpp"
#include "core/time.hpp"

namespace boost::asio::ssl {
class context;
}

namespace regfs::etcd {

struct Reply {
  unsigned status = 0;
  std::string body;
};

// The largest reply body read (a range of the whole prefix), and the longest
// watch line.
inline constexpr std::size_t kMaxBody = 64 * 1024 * 1024;

class Post {
 public:
  using Done = std::function<void(Result<Reply>)>;
  // POSTs `body` to http(s)://`member``path`; `done` within `timeout`.
  // `token` (etcd's auth token; empty: none) goes in the Authorization header.
  // `tls` (null: plain HTTP) must outlive the request; the deadline covers the handshake.
  static std::shared_ptr<Post> start(boost::asio::io_context& io, const std::string& member,
                                     const std::string& path, std::string body, Duration timeout,
                                     Done done, const std::string& token = {},
                                     boost::asio::ssl::context* tls = nullptr);
  virtual ~Post() = default;
  // Ends the request; `done` is not called.
  virtual void cancel() = 0;
};

class Watch {
 public:
  using OnLine = std::function<void(std::string line)>;
  using OnEnd = std::function<void(const std::string& why)>;
  // Opens the watch stream with `body` at http(s)://`member`/v3/watch.
  // Connecting (with the TLS handshake) and the response's header must
  // complete within `connect_timeout`; after that the stream has no deadline
  // of its own (the caller watches silence).
  static std::shared_ptr<Watch> start(boost::asio::io_context& io, const std::string& member,
                                      std::string body, Duration connect_timeout, OnLine on_line,
                                      OnEnd on_end, const std::string& token = {},
                                      boost::asio::ssl::context* tls = nullptr);
  virtual ~Watch() = default;
  virtual void cancel() = 0;
};

}  // namespace regfs::etcd
