#include "cluster/codec.hpp"

#include <type_traits>

#include "cluster/wire.hpp"

namespace regfs::cluster {
namespace {

using wire::Reader;
using wire::Writer;

enum Type : std::uint8_t {
  kPing = 1, kPingReq = 2, kAck = 3, kNack = 4, kAlive = 5, kSuspect = 6, kDead = 7,
  kEntry = 8, kSyncHello = 16, kSyncState = 17, kOriginChunk = 18,
};

// --- encoding ---

void put_node(Writer& w, const NodeId& n) { w.str(n.name); w.varint(n.generation); }

void put_instances(Writer& w, const std::vector<InstanceSpec>& v) {
  w.varint(v.size());
  for (const auto& s : v) {
    w.str(s.endpoint.host);
    w.u16(s.endpoint.port);
    w.u8(static_cast<std::uint8_t>(s.check.kind));
    w.str(s.check.path);
  }
}

std::uint8_t body(Writer& w, const Ping& m) { w.varint(m.seq); put_node(w, m.target); return kPing; }
std::uint8_t body(Writer& w, const PingReq& m) {
  w.varint(m.seq); put_node(w, m.target); w.str(m.addr.value); return kPingReq;
}
std::uint8_t body(Writer& w, const Ack& m) { w.varint(m.seq); w.varint(m.registry_hash); return kAck; }
std::uint8_t body(Writer& w, const Nack& m) { w.varint(m.seq); return kNack; }
std::uint8_t body(Writer& w, const Alive& m) {
  put_node(w, m.node); w.varint(m.incarnation); w.str(m.addr.value); w.varint(m.version);
  return kAlive;
}
std::uint8_t body(Writer& w, const Suspect& m) {
  put_node(w, m.node); w.varint(m.incarnation); w.str(m.from); return kSuspect;
}
std::uint8_t body(Writer& w, const Dead& m) {
  put_node(w, m.node); w.varint(m.incarnation); w.str(m.from); w.u8(m.left ? 1 : 0);
  return kDead;
}
std::uint8_t body(Writer& w, const Entry& m) {
  put_node(w, m.origin); w.str(m.service); w.varint(m.version); put_instances(w, m.instances);
  return kEntry;
}
std::uint8_t body(Writer& w, const SyncHello& m) {
  w.varint(m.members_hash); w.varint(m.registry_hash); return kSyncHello;
}
std::uint8_t body(Writer& w, const SyncState& m) {
  w.u8(m.stage);
  w.varint(m.members.size());
  for (const auto& r : m.members) {
    put_node(w, r.node); w.varint(r.incarnation); w.u8(static_cast<std::uint8_t>(r.state));
    w.str(r.addr.value); w.varint(r.version);
  }
  w.varint(m.digests.size());
  for (const auto& d : m.digests) { put_node(w, d.origin); w.varint(d.complete); w.varint(d.max); }
  return kSyncState;
}
std::uint8_t body(Writer& w, const OriginChunk& m) {
  put_node(w, m.origin); w.varint(m.base); w.varint(m.upto); w.u8(m.snapshot ? 1 : 0);
  w.varint(m.items.size());
  for (const auto& i : m.items) { w.str(i.service); w.varint(i.version); put_instances(w, i.instances); }
  return kOriginChunk;
}

// --- decoding ---

NodeId get_node(Reader& r) {
  NodeId n;
  n.name = r.str(kMaxNodeName);
  n.generation = r.varint();
  if (r.ok() && !valid_node_name(n.name)) r.fail();
  return n;
}

std::string get_name(Reader& r) {
  std::string s = r.str(kMaxNodeName);
  if (r.ok() && !valid_node_name(s)) r.fail();
  return s;
}

std::string get_service(Reader& r) {
  std::string s = r.str(kMaxServiceName);
  if (r.ok() && !valid_service_name(s)) r.fail();
  return s;
}

std::vector<InstanceSpec> get_instances(Reader& r, const WireLimits& lim) {
  std::vector<InstanceSpec> v(r.count(lim.max_instances, 5));
  for (auto& s : v) {
    s.endpoint.host = r.str(kMaxHostName);
    if (r.ok() && !valid_host(s.endpoint.host)) r.fail();
    s.endpoint.port = r.u16();
    const std::uint8_t kind = r.u8();
    if (kind > static_cast<std::uint8_t>(Check::Kind::none)) r.fail();
    s.check.kind = static_cast<Check::Kind>(kind);
    s.check.path = r.str(kMaxCheckPath);
    if (s.check.kind != Check::Kind::http && !s.check.path.empty()) r.fail();
  }
  return v;
}

bool get_flag(Reader& r) {
  const std::uint8_t b = r.u8();
  if (b > 1) r.fail();
  return b == 1;
}

Message decode_body(std::uint8_t type, Reader& r, const WireLimits& lim) {
  switch (type) {
    case kPing: { Ping m; m.seq = r.varint32(); m.target = get_node(r); return m; }
    case kPingReq: {
      PingReq m; m.seq = r.varint32(); m.target = get_node(r); m.addr.value = r.str(kMaxAddr);
      return m;
    }
    case kAck: { Ack m; m.seq = r.varint32(); m.registry_hash = r.varint(); return m; }
    case kNack: return Nack{r.varint32()};
    case kAlive: {
      Alive m; m.node = get_node(r); m.incarnation = r.varint32(); m.addr.value = r.str(kMaxAddr);
      m.version = r.varint();
      return m;
    }
    case kSuspect: {
      Suspect m; m.node = get_node(r); m.incarnation = r.varint32(); m.from = get_name(r);
      return m;
    }
    case kDead: {
      Dead m; m.node = get_node(r); m.incarnation = r.varint32(); m.from = get_name(r);
      m.left = get_flag(r);
      return m;
    }
    case kEntry: {
      Entry m; m.origin = get_node(r); m.service = get_service(r); m.version = r.varint();
      m.instances = get_instances(r, lim);
      return m;
    }
    case kSyncHello: { SyncHello m; m.members_hash = r.varint(); m.registry_hash = r.varint(); return m; }
    case kSyncState: {
      SyncState m;
      m.stage = r.u8();
      if (m.stage != 1 && m.stage != 2) r.fail();
      m.members.resize(r.count(lim.max_members, 6));
      for (auto& rec : m.members) {
        rec.node = get_node(r); rec.incarnation = r.varint32();
        const std::uint8_t st = r.u8();
        if (st > static_cast<std::uint8_t>(MemberState::left)) r.fail();
        rec.state = static_cast<MemberState>(st);
        rec.addr.value = r.str(kMaxAddr);
        rec.version = r.varint();
      }
      m.digests.resize(r.count(lim.max_members, 4));
      for (auto& d : m.digests) { d.origin = get_node(r); d.complete = r.varint(); d.max = r.varint(); }
      return m;
    }
    case kOriginChunk: {
      OriginChunk m;
      m.origin = get_node(r); m.base = r.varint(); m.upto = r.varint(); m.snapshot = get_flag(r);
      m.items.resize(r.count(lim.max_items, 3));
      for (auto& i : m.items) {
        i.service = get_service(r); i.version = r.varint(); i.instances = get_instances(r, lim);
      }
      return m;
    }
    default: break;
  }
  r.fail();
  return Ack{};
}

bool known_type(std::uint8_t t) { return (t >= kPing && t <= kEntry) || (t >= kSyncHello && t <= kOriginChunk); }

}  // namespace

std::vector<std::uint8_t> encode_message(const Message& m) {
  Writer b;
  const std::uint8_t type = std::visit([&](const auto& v) { return body(b, v); }, m);
  Writer w;
  w.u8(type);
  w.varint(b.size());
  w.bytes(b.buffer());
  return w.take();
}

std::vector<std::uint8_t> encode_header(Channel channel, const NodeId& sender) {
  Writer w;
  w.u8('R'); w.u8('G'); w.u8(kWireVersion); w.u8(static_cast<std::uint8_t>(channel));
  put_node(w, sender);
  return w.take();
}

std::size_t header_size(const NodeId& sender) {
  auto varint_size = [](std::uint64_t v) {
    std::size_t n = 1;
    for (; v >= 0x80; v >>= 7) ++n;
    return n;
  };
  return 4 + varint_size(sender.name.size()) + sender.name.size() + varint_size(sender.generation);
}

std::vector<std::uint8_t> encode_frame(Channel channel, const NodeId& sender,
                                       std::span<const Message> messages) {
  auto out = encode_header(channel, sender);
  for (const auto& m : messages) {
    auto b = encode_message(m);
    out.insert(out.end(), b.begin(), b.end());
  }
  return out;
}

Decoded<Frame> decode_frame(std::span<const std::uint8_t> bytes, const WireLimits& limits) {
  using D = Decoded<Frame>;
  if (bytes.size() > limits.max_stream) return D::failure("frame over the stream limit");
  Reader r(bytes);
  if (r.u8() != 'R' || r.u8() != 'G') return D::failure("bad magic");
  const std::uint8_t version = r.u8();
  if (!r.ok() || version != kWireVersion) return D::failure("unsupported wire version");
  const std::uint8_t channel = r.u8();
  if (channel > 1) return D::failure("bad channel");
  Frame f;
  f.channel = static_cast<Channel>(channel);
  if (f.channel == Channel::packet && bytes.size() > limits.max_packet) {
    return D::failure("packet over the datagram limit");
  }
  f.sender = get_node(r);
  if (!r.ok()) return D::failure("bad sender");
  wire::Budget budget{limits.max_elements};
  while (r.ok() && !r.at_end()) {
    const std::uint8_t type = r.u8();
    const std::uint64_t len = r.varint();
    if (!r.ok() || len > r.remaining()) return D::failure("truncated message");
    Reader body_reader(r.take(static_cast<std::size_t>(len)), &budget);
    if (!known_type(type)) continue;
    Message m;
    if (body_reader.charge(1)) m = decode_body(type, body_reader, limits);
    if (budget.exceeded) return D::failure("frame over the element limit");
    if (!body_reader.ok()) return D::failure("malformed message of type " + std::to_string(type));
    f.messages.push_back(std::move(m));
  }
  if (!r.ok()) return D::failure("truncated frame");
  return f;
}

}  // namespace regfs::cluster
