// TLS to etcd's client port (etcds://): the client context, made once at
// start from the CA, certificate and key files, and how a connection checks
// the member it reached.
#pragma once

#include <boost/asio/ssl/context.hpp>
#include <memory>
#include <string>

#include "core/result.hpp"

namespace regfs::etcd {

struct TlsFiles {
  std::string
      ca;  // PEM CA certificates the members' certificates must chain to; empty: the system's
  std::string cert;  // PEM client certificate (with its chain); empty: none
  std::string key;   // PEM private key of `cert`
};

// A client context: TLS 1.2 or later, the member's certificate verified
// against `files.ca` (or the system's CAs), and the client certificate
// presented when given. Every file is read here, once: a missing, unreadable
// or malformed file, or a key that is not the certificate's, is an
// Errc::invalid_line error that names the option and the file.
Result<std::shared_ptr<boost::asio::ssl::context>> make_tls_context(const TlsFiles& files);

}  // namespace regfs::etcd
