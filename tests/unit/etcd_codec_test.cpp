// The etcd store's pure codec: base64, the gateway's JSON, the watch stream's
// line framing and the key layout, with hostile input.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "codec.hpp"

using namespace regfs;
using namespace regfs::etcd;

namespace {
InstanceSpec spec(const std::string& line) { return *parse_line(line, Limits{}); }
std::string b64(const std::string& s) { return base64_encode(s); }
std::string put_event(const std::string& key, const std::string& value, int rev) {
  return R"({"kv":{"key":")" + b64(key) + R"(","create_revision":")" + std::to_string(rev) +
         R"(","mod_revision":")" + std::to_string(rev) + R"(","version":"1","value":")" + b64(value) +
         R"(","lease":"7587883"}})";
}
}  // namespace

TEST_CASE("base64 round-trips every length and refuses what is not canonical base64") {
  std::string all;
  for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
  for (std::size_t n = 0; n < 40; ++n) {
    const std::string in = all.substr(n, n);
    CHECK(base64_decode(base64_encode(in)) == in);
  }
  CHECK(base64_encode("/regfs/") == "L3JlZ2ZzLw==");
  CHECK(base64_decode("L3JlZ2ZzLw==") == "/regfs/");
  for (const char* bad : {"L3JlZ2ZzLw", "L3JlZ2ZzLw=", "L3Jl=2ZzLw==", "L3JlZ2ZzL w=", "L3JlZ2ZzLx==",
                          "====", "A===", "AB=C", "L3JlZ2Zz\nLw=="}) {
    INFO(bad);
    CHECK_FALSE(base64_decode(bad).has_value());
  }
  CHECK_FALSE(base64_decode(std::string("AAA\0", 4)).has_value());
  CHECK(base64_decode("") == "");
}

TEST_CASE("the line splitter joins lines across any chunk boundary") {
  const std::string stream = "{\"a\":1}\n{\"b\":2}\r\n\n{\"c\":3}\n{\"partial";
  for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
    for (std::size_t step = 1; step <= 5; ++step) {
      LineSplitter split(1024);
      std::vector<std::string> lines;
      REQUIRE(split.feed(stream.substr(0, cut), lines));
      for (std::size_t i = cut; i < stream.size(); i += step) {
        REQUIRE(split.feed(stream.substr(i, step), lines));
      }
      REQUIRE(lines == std::vector<std::string>{"{\"a\":1}", "{\"b\":2}", "{\"c\":3}"});
      CHECK(split.pending() == std::string("{\"partial").size());
    }
  }
}

TEST_CASE("the line splitter refuses a line over its bound, for good") {
  LineSplitter split(8);
  std::vector<std::string> lines;
  CHECK(split.feed("12345678\n", lines));
  CHECK(lines.size() == 1);
  CHECK(split.feed("1234", lines));
  CHECK_FALSE(split.feed("56789", lines));
  CHECK(split.pending() == 0);
  CHECK_FALSE(split.feed("\n", lines));
  CHECK(lines.size() == 1);
}

TEST_CASE("a range reply decodes keys, values and 64-bit numbers sent as strings") {
  const std::string body =
      R"({"header":{"cluster_id":"14841639068965178418","member_id":"10276657743932975437","revision":"9223372036854775807","raft_term":"2"},"kvs":[)" +
      std::string(R"({"key":")") + b64("/regfs/web/n1/10.0.0.1:80") + R"(","value":")" + b64("v") +
      R"(","mod_revision":"5","lease":"7587883"}],"count":"1"})";
  auto r = parse_range(body);
  REQUIRE(r.ok());
  CHECK(r->revision == 9223372036854775807);
  REQUIRE(r->kvs.size() == 1);
  CHECK(r->kvs[0].key == "/regfs/web/n1/10.0.0.1:80");
  CHECK(r->kvs[0].lease == 7587883);
  CHECK(r->kvs[0].mod_revision == 5);
  // An empty prefix: no kvs field at all.
  auto empty = parse_range(R"({"header":{"revision":"3"}})");
  REQUIRE(empty.ok());
  CHECK(empty->kvs.empty());
}

TEST_CASE("hostile gateway replies are errors, never crashes") {
  const std::vector<std::string> bodies = {
      "",
      "null",
      "[]",
      "\"x\"",
      "{",
      "<html>502 Bad Gateway</html>",
      R"({"header":{"revision":"-1"}})",
      R"({"header":{"revision":"18446744073709551616"}})",
      R"({"header":{"revision":"12x"}})",
      R"({"header":{"revision":12.5}})",
      R"({"header":{"revision":""}})",
      R"({"header":"x"})",
      R"({"header":{"revision":"2"},"kvs":{}})",
      R"({"header":{"revision":"2"},"kvs":[1]})",
      R"({"header":{"revision":"2"},"kvs":[{"key":"!!!!"}]})",
      R"({"header":{"revision":"2"},"kvs":[{"key":""}]})",
      R"({"header":{"revision":"2"},"kvs":[{"key":"YQ==","lease":"-5"}]})",
      R"({"error":"etcdserver: mvcc: required revision has been compacted","code":11})",
      std::string(100000, '[') + std::string(100000, ']'),
      std::string(100000, '{'),
  };
  for (const auto& body : bodies) {
    INFO(body.substr(0, 60));
    CHECK_FALSE(parse_range(body).ok());
    CHECK_FALSE(parse_watch(body).ok());
    if (body.find("kvs") == std::string::npos) CHECK_FALSE(parse_header_revision(body).ok());
  }
  auto e = parse_range(R"({"error":"etcdserver: request timed out","code":14})");
  REQUIRE_FALSE(e.ok());
  CHECK_THAT(e.error().detail, Catch::Matchers::Contains("request timed out"));
}

TEST_CASE("watch messages: created, events, progress, compaction") {
  auto created = parse_watch(R"({"result":{"header":{"revision":"4"},"created":true}})");
  REQUIRE(created.ok());
  CHECK(created->created);
  CHECK(created->events.empty());

  auto events = parse_watch(R"({"result":{"header":{"revision":"7"},"events":[)" +
                            put_event("/regfs/web/n2/10.0.0.2:80", "v", 6) + R"(,{"type":"DELETE","kv":{"key":")" +
                            b64("/regfs/web/n2/10.0.0.3:80") + R"(","mod_revision":"7"}}]}})");
  REQUIRE(events.ok());
  REQUIRE(events->events.size() == 2);
  CHECK_FALSE(events->events[0].deleted);
  CHECK(events->events[0].kv.value == "v");
  CHECK(events->events[1].deleted);
  CHECK(events->events[1].kv.mod_revision == 7);

  auto compacted = parse_watch(
      R"({"result":{"header":{"raft_term":"2"},"canceled":true,"compact_revision":"40"}})");
  REQUIRE(compacted.ok());
  CHECK(compacted->canceled);
  CHECK(compacted->compact_revision == 40);

  CHECK_FALSE(parse_watch(R"({"result":{"events":[{"type":"MOVE","kv":{"key":"YQ=="}}]}})").ok());
  CHECK_FALSE(parse_watch(R"({"result":{"events":[{"kv":{"key":"YQ"}}]}})").ok());
  CHECK_FALSE(parse_watch(R"({"result":{"events":[{}]}})").ok());
  CHECK_FALSE(parse_watch(R"({"error":{"grpc_code":14,"message":"etcdserver: no leader"}})").ok());
}

TEST_CASE("lease replies: a keepalive of a lease that is gone has no TTL") {
  auto granted = parse_lease(R"({"header":{"revision":"1"},"ID":"2324035756503923973","TTL":"10"})");
  REQUIRE(granted.ok());
  CHECK(granted->id == 2324035756503923973);
  CHECK(granted->ttl == 10);
  auto alive = parse_lease(R"({"result":{"header":{"revision":"2"},"ID":"77","TTL":"9"}})");
  REQUIRE(alive.ok());
  CHECK(alive->ttl == 9);
  auto gone = parse_lease(R"({"result":{"header":{"revision":"2"},"ID":"77"}})");
  REQUIRE(gone.ok());
  CHECK(gone->ttl == 0);
  CHECK_FALSE(parse_lease(R"({"result":{"header":{}}})").ok());
  CHECK_FALSE(parse_lease(R"({"error":"etcdserver: requested lease not found","code":5})").ok());
}

TEST_CASE("an instance's key and value read back, and nothing else does") {
  const auto s = spec("10.0.0.5:8080 check=http:/health");
  const std::string key = instance_key("/regfs/", "web", "node-1", s.endpoint);
  const std::string value = instance_value("node-1", s);
  CHECK(key == "/regfs/web/node-1/10.0.0.5:8080");
  CHECK(value == R"({"Addr":"10.0.0.5:8080","Metadata":{"check":"http:/health","owner":"node-1"},"Op":0})");
  auto e = parse_entry("/regfs/", key, value);
  REQUIRE(e.has_value());
  CHECK(e->service == "web");
  CHECK(e->owner == "node-1");
  CHECK(e->spec == s);
  const auto v6 = spec("[::1]:80 check=none");
  auto e6 = parse_entry("/regfs/", instance_key("/regfs/", "db", "n", v6.endpoint), instance_value("n", v6));
  REQUIRE(e6.has_value());
  CHECK(e6->spec == v6);

  const std::vector<std::pair<std::string, std::string>> bad = {
      {"/other/web/node-1/10.0.0.5:8080", value},
      {"/regfs/web/node-1", value},
      {"/regfs/web/node-1/", value},
      {"/regfs/.web/node-1/10.0.0.5:8080", value},
      {"/regfs/web/no de/10.0.0.5:8080", value},
      {"/regfs/web/node-1/:8080", value},
      {"/regfs/web/node-1/10.0.0.5:99999", value},
      {"/regfs/web/node-1/10.0.0.5:8080/x", value},
      {"/regfs/web/node-2/10.0.0.5:8080", value},  // owner disagrees
      {"/regfs/web/node-1/10.0.0.6:8080", value},  // address disagrees
      {key, "not json"},
      {key, R"({"Op":1,"Addr":"10.0.0.5:8080","Metadata":{"check":"tcp","owner":"node-1"}})"},
      {key, R"({"Op":0,"Addr":"10.0.0.5:8080","Metadata":{"check":"ftp","owner":"node-1"}})"},
      {key, R"({"Op":0,"Addr":"10.0.0.5:8080"})"},
      {key, R"({"Op":0,"Addr":"10.0.0.5:8080","Metadata":"x"})"},
  };
  for (const auto& [k, v] : bad) {
    INFO(k << " = " << v);
    CHECK_FALSE(parse_entry("/regfs/", k, v).has_value());
  }
}

TEST_CASE("the key space says which owners' services changed") {
  KeySpace keys("/regfs/");
  const auto a = spec("10.0.0.1:80");
  const auto b = spec("10.0.0.2:80");
  auto changed = keys.reset({{instance_key("/regfs/", "web", "n1", a.endpoint), instance_value("n1", a), 1, 2},
                             {"/regfs/junk", "x", 0, 3}});
  CHECK(changed == KeySpace::Changed{{"web", "n1"}});
  CHECK(keys.ignored() == 1);
  CHECK(keys.instances("web", "n1") == std::vector<InstanceSpec>{a});
  changed = keys.apply({WatchEvent{false, {instance_key("/regfs/", "web", "n2", b.endpoint), instance_value("n2", b), 1, 4}},
                        WatchEvent{true, {instance_key("/regfs/", "web", "n1", a.endpoint), "", 0, 5}}});
  CHECK(changed == KeySpace::Changed{{"web", "n1"}, {"web", "n2"}});
  CHECK(keys.instances("web", "n1").empty());
  CHECK(keys.instances("web", "n2") == std::vector<InstanceSpec>{b});
  CHECK(keys.owners() == std::set<std::string>{"n2"});
  // A key rewritten with a bad value drops the instance it held.
  changed = keys.apply({WatchEvent{false, {instance_key("/regfs/", "web", "n2", b.endpoint), "garbage", 1, 6}}});
  CHECK(changed == KeySpace::Changed{{"web", "n2"}});
  CHECK(keys.instances("web", "n2").empty());
  // A prefix that is a prefix of another service's name keeps them apart.
  CHECK(keys.keys_of("we", "n2").empty());
}

TEST_CASE("requests carry base64 keys, the prefix's range end and 64-bit numbers as strings") {
  CHECK(prefix_range_end("/regfs/") == "/regfs0");
  CHECK(range_request("/regfs/") == R"({"key":"L3JlZ2ZzLw==","range_end":"L3JlZ2ZzMA=="})");
  CHECK(lease_keepalive_request(9223372036854775807) == R"({"ID":"9223372036854775807"})");
  const auto w = watch_request("/regfs/", 12);
  CHECK_THAT(w, Catch::Matchers::Contains(R"("start_revision":"12")"));
  CHECK_THAT(w, Catch::Matchers::Contains(R"("progress_notify":true)"));
  const auto txn = publish_request("/regfs/", "web", "n1", {spec("10.0.0.1:80")},
                                   {"/regfs/web/n1/10.0.0.9:80"}, 42);
  CHECK_THAT(txn, Catch::Matchers::Contains(R"("request_delete_range":{"key":")" + b64("/regfs/web/n1/10.0.0.9:80")));
  CHECK_THAT(txn, Catch::Matchers::Contains(R"("lease":"42")"));
}

TEST_CASE("an authenticate reply's token goes into a header only when it is printable") {
  CHECK(auth_request("root", "p\"w") == R"({"name":"root","password":"p\"w"})");
  auto ok = parse_auth(R"({"header":{"revision":"3"},"token":"cqgDgpjeVyHhDMoQ.2312"})");
  REQUIRE(ok.ok());
  CHECK(*ok == "cqgDgpjeVyHhDMoQ.2312");
  for (const char* bad : {R"({"header":{}})", R"({"token":""})", R"({"token":"a\r\nX-Evil: 1"})",
                          R"({"token":"a b"})", R"({"token":7})",
                          R"({"error":"etcdserver: authentication failed, invalid user ID or password","code":3})"}) {
    INFO(bad);
    CHECK_FALSE(parse_auth(bad).ok());
  }
}
