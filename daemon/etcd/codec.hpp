// What regfs reads from and writes to etcd v3's JSON gateway, as pure
// functions over bytes and values: no socket, no clock. Every decoder takes
// hostile input (a proxy, a wrong server, a cut stream) and answers a value
// or an error, never a crash; bounds are checked before allocation.
//
// The key layout (docs/INTERFACES.md, The etcd store):
//   <prefix><service>/<owner>/<endpoint>   one key per instance, bound to
//                                          the owner daemon's lease
// and its value, readable by etcd's own endpoint resolver
// (go.etcd.io/etcd/client/v3/naming/endpoints):
//   {"Op":0,"Addr":"<endpoint>","Metadata":{"check":"<check>","owner":"<owner>"}}
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/base64.hpp"  // etcd's bytes fields
#include "core/instance.hpp"
#include "core/result.hpp"

namespace regfs::etcd {

// The end of the range of every key starting with `prefix` (etcd's
// range_end: the prefix with its last byte incremented). `prefix` must not
// be empty or all 0xff bytes.
std::string prefix_range_end(std::string_view prefix);

// One instance as a key and its value.
std::string instance_key(std::string_view prefix, std::string_view service,
                         std::string_view owner, const Endpoint& endpoint);
std::string instance_value(std::string_view owner, const InstanceSpec& spec);

// A key under `prefix` and its value read back. nullopt for anything that is
// not exactly what instance_key/instance_value write (a foreign key under
// the prefix, a bad service or node name, an endpoint without a host, a value
// that disagrees with its key).
struct Entry {
  std::string service;
  std::string owner;
  InstanceSpec spec;
  friend auto operator<=>(const Entry&, const Entry&) = default;
};
std::optional<Entry> parse_entry(std::string_view prefix, std::string_view key,
                                 std::string_view value);

// ---- gateway messages ------------------------------------------------------

// A key-value pair as the gateway sends it, decoded.
struct KeyValue {
  std::string key;
  std::string value;
  std::int64_t lease = 0;
  std::int64_t mod_revision = 0;
};

struct RangeReply {
  std::int64_t revision = 0;  // the store's revision the range was read at
  std::vector<KeyValue> kvs;
  bool more = false;
};

struct LeaseReply {
  std::int64_t id = 0;
  std::int64_t ttl = 0;  // seconds; 0 from a keepalive: the lease is gone
};

// One message of a watch stream (one line of its response).
struct WatchEvent {
  bool deleted = false;  // DELETE; otherwise PUT
  KeyValue kv;
};
struct WatchMessage {
  std::int64_t revision = 0;  // header.revision; 0 when absent
  bool created = false;
  bool canceled = false;
  std::int64_t compact_revision = 0;  // >0: canceled because compacted
  std::string cancel_reason;
  std::vector<WatchEvent> events;  // empty in a progress notification
};

// Each parses one gateway body (or watch line). An error carries the
// gateway's own message where it sent one ({"error": ..., "code": n}).
Result<RangeReply> parse_range(std::string_view body);
Result<LeaseReply> parse_lease(std::string_view body);  // grant, or one keepalive line
Result<WatchMessage> parse_watch(std::string_view line);
// A put, delete or txn reply: its header's revision.
Result<std::int64_t> parse_header_revision(std::string_view body);

// Request bodies.
std::string range_request(std::string_view prefix);
std::string lease_grant_request(std::int64_t ttl_seconds);
std::string lease_keepalive_request(std::int64_t id);
std::string lease_revoke_request(std::int64_t id);
std::string auth_request(std::string_view user, std::string_view password);
// An authenticate reply's token (what goes in the Authorization header).
Result<std::string> parse_auth(std::string_view body);
std::string watch_request(std::string_view prefix, std::int64_t start_revision);
// One transaction making `owner`'s keys of `service` exactly `specs` under
// `lease`: deletes the keys in `stale` (keys of that service the owner holds
// that are not in `specs`) and puts one per spec.
std::string publish_request(std::string_view prefix, std::string_view service,
                            std::string_view owner, const std::vector<InstanceSpec>& specs,
                            const std::vector<std::string>& stale, std::int64_t lease);

// ---- the watch stream's framing --------------------------------------------

// Splits a byte stream into lines at '\n', whatever the chunk boundaries.
// A line longer than `max_line` is an error: the stream must be dropped.
class LineSplitter {
 public:
  explicit LineSplitter(std::size_t max_line) : max_(max_line) {}
  // Appends `bytes`; complete lines (without '\n', blank ones skipped) go to
  // `out`. False once a line grew over the bound (sticky).
  bool feed(std::string_view bytes, std::vector<std::string>& out);
  std::size_t pending() const { return partial_.size(); }

 private:
  std::size_t max_;
  std::string partial_;
  bool failed_ = false;
};

// ---- what the prefix holds ---------------------------------------------------

// The store's view of the prefix: every valid entry by key. Applying a range
// or watch events says which (service, owner) pairs changed.
class KeySpace {
 public:
  using Changed = std::set<std::pair<std::string, std::string>>;  // service, owner

  explicit KeySpace(std::string prefix) : prefix_(std::move(prefix)) {}
  // Replaces everything with a full range's content.
  Changed reset(const std::vector<KeyValue>& kvs);
  Changed apply(const std::vector<WatchEvent>& events);
  // `owner`'s instances of `service`, sorted.
  std::vector<InstanceSpec> instances(std::string_view service, std::string_view owner) const;
  // The keys `owner` holds for `service`, and every owner's keys.
  std::vector<std::string> keys_of(std::string_view service, std::string_view owner) const;
  std::set<std::string> owners() const;
  std::set<std::string> services_of(std::string_view owner) const;
  std::size_t size() const { return entries_.size(); }
  std::uint64_t ignored() const { return ignored_; }  // keys under the prefix that did not parse

 private:
  std::string prefix_;
  std::map<std::string, Entry> entries_;
  std::uint64_t ignored_ = 0;
};

}  // namespace regfs::etcd
