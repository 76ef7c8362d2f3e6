// regfs template's language and regfs watch's views, without a mount.
#include <catch2/catch.hpp>
#include <cerrno>

#include "quiet.hpp"
#include "template.hpp"
#include "watch.hpp"

using namespace regfs;
using namespace regfs::cli;

namespace {

ServiceData healthy(std::vector<std::string> endpoints) {
  ServiceData d{true, {}};
  for (const auto& ep : endpoints) {
    auto inst = instance_from_endpoint(ep);
    REQUIRE(inst.ok());
    inst->owner = "n1";
    inst->check = "tcp";
    d.healthy.push_back(*inst);
  }
  return d;
}

std::string render(std::string_view text, const std::map<std::string, ServiceData>& data) {
  auto t = Template::parse(text);
  REQUIRE(t.ok());
  auto out = t->render(data);
  REQUIRE(out.ok());
  return *out;
}

}  // namespace

TEST_CASE("a section lists the healthy instances with their fields") {
  const auto out = render(
      "upstream web {\n{{#service:web}}  server {{endpoint}}; # {{host}} {{port}} {{owner}} "
      "{{check}} "
      "{{service}} {{index}}{{#first}} first{{/first}}{{#last}} last{{/last}}\n{{/service:web}}}\n",
      {{"web", healthy({"127.0.0.1:8080", "[::1]:9090"})}});
  CHECK(out ==
        "upstream web {\n"
        "  server 127.0.0.1:8080; # 127.0.0.1 8080 n1 tcp web 0 first\n"
        "  server [::1]:9090; # ::1 9090 n1 tcp web 1 last\n"
        "}\n");
}

TEST_CASE("a missing service renders an empty list and its inverted section") {
  const std::string text =
      "{{#service:web}}server {{endpoint}};{{/service:web}}{{^service:web}}none{{/service:web}}";
  CHECK(render(text, {}) == "none");
  CHECK(render(text, {{"web", ServiceData{true, {}}}}) == "none");
  CHECK(render(text, {{"web", healthy({"10.0.0.1:80"})}}) == "server 10.0.0.1:80;");
}

TEST_CASE("services with dots and dashes in their names") {
  auto t = Template::parse("{{#service:config.server-1}}{{endpoint}}{{/service:config.server-1}}");
  REQUIRE(t.ok());
  CHECK(t->services() == std::set<std::string>{"config.server-1"});
  CHECK(*t->render({{"config.server-1", healthy({"10.0.0.1:8888"})}}) == "10.0.0.1:8888");
}

TEST_CASE("nothing is HTML-escaped") {
  ServiceData d = healthy({"10.0.0.1:80"});
  d.healthy[0].check = "http:/health?a=1&b=<2>";
  CHECK(render("{{#service:w}}{{check}}|{{{check}}}{{/service:w}}", {{"w", d}}) ==
        "http:/health?a=1&b=<2>|http:/health?a=1&b=<2>");
}

TEST_CASE("a required service that is missing or down fails the render") {
  auto t = Template::parse(
      "{{#service:db!}}{{endpoint}}{{/service:db!}} {{#service:web}}{{endpoint}}{{/service:web}}");
  REQUIRE(t.ok());
  CHECK(t->required() == std::set<std::string>{"db"});
  CHECK(t->services() == std::set<std::string>{"db", "web"});
  auto missing = t->render({});
  REQUIRE(!missing.ok());
  CHECK(missing.error().code == Errc::not_found);
  auto down = t->render({{"db", ServiceData{true, {}}}});
  REQUIRE(!down.ok());
  CHECK(down.error().code == Errc::host_down);
  CHECK(*t->render({{"db", healthy({"10.0.0.2:5432"})}}) == "10.0.0.2:5432 ");
}

TEST_CASE("bad templates are refused when parsed, with where and what") {
  auto unclosed = Template::parse("a\n{{#service:web}}\n");
  REQUIRE(!unclosed.ok());
  CHECK(unclosed.error().detail.find("Unclosed section") != std::string::npos);

  auto misspelt = Template::parse("x\n{{#service:web}}{{endpont}}{{/service:web}}");
  REQUIRE(!misspelt.ok());
  CHECK(misspelt.error().detail.find("line 2: unknown name 'endpont'") != std::string::npos);

  auto top = Template::parse("{{web}}");
  REQUIRE(!top.ok());
  CHECK(top.error().detail.find("unknown name 'web'") != std::string::npos);

  auto inverted = Template::parse("{{^service:web}}{{nothing}}{{/service:web}}");
  REQUIRE(!inverted.ok());

  auto partial = Template::parse("{{> other}}");
  REQUIRE(!partial.ok());
  CHECK(partial.error().detail.find("partials") != std::string::npos);

  auto bad_name = Template::parse("{{#service:.hidden}}{{/service:.hidden}}");
  REQUIRE(!bad_name.ok());
  CHECK(bad_name.error().detail.find("'.hidden' is not a service name") != std::string::npos);

  auto mismatched = Template::parse("{{#service:a}}{{/service:b}}");
  REQUIRE(!mismatched.ok());
}

TEST_CASE(".all answers with owner and check from .status.json") {
  const auto status = index_status(R"({"services": {"web": [
      {"endpoint": "127.0.0.1:2", "owner": "n2", "check": "http:/h"},
      {"endpoint": "127.0.0.1:1", "owner": "n1", "check": "tcp"}]}})");
  const auto insts =
      parse_all_answer("127.0.0.1:2\n127.0.0.1:1\nnot an endpoint\n127.0.0.1:3\n", status, "web");
  REQUIRE(insts.size() == 3);
  CHECK(insts[0].endpoint == "127.0.0.1:1");
  CHECK(insts[0].owner == "n1");
  CHECK(insts[1].check == "http:/h");
  CHECK(insts[2].owner.empty());
  CHECK(index_status("not json").empty());
}

TEST_CASE("IN:OUT[:COMMAND] and --wait") {
  auto s = parse_template_spec("a.tmpl:/etc/nginx/x.conf:nginx -s reload; echo a:b");
  REQUIRE(s.ok());
  CHECK(s->in == "a.tmpl");
  CHECK(s->out == "/etc/nginx/x.conf");
  CHECK(s->command == "nginx -s reload; echo a:b");
  CHECK(parse_template_spec("a:b")->command.empty());
  CHECK(!parse_template_spec("a").ok());
  CHECK(!parse_template_spec(":b").ok());
  CHECK(!parse_template_spec("a:").ok());
  CHECK(!parse_template_spec("a:b: ").ok());

  CHECK(parse_wait("200ms")->min == milliseconds(200));
  CHECK(parse_wait("200ms")->max == milliseconds(800));
  CHECK(parse_wait("100ms:2s")->max == seconds(2));
  CHECK(!parse_wait("2s:1s").ok());
  CHECK(!parse_wait("soon").ok());
}

TEST_CASE("a burst of changes makes one render, a stream one every MAX") {
  Quiet q(milliseconds(100), milliseconds(300));
  const Time t0{seconds(10)};
  CHECK(!q.pending());
  q.changed(t0);
  CHECK(q.due() == t0 + milliseconds(100));
  q.changed(t0 + milliseconds(50));
  CHECK(q.due() == t0 + milliseconds(150));
  for (int i = 1; i <= 10; ++i) q.changed(t0 + milliseconds(50 * i));
  CHECK(q.due() == t0 + milliseconds(300));  // MAX after the first
  q.rendered();
  CHECK(!q.pending());
  q.changed(t0 + seconds(1));
  CHECK(q.due() == t0 + seconds(1) + milliseconds(100));
}

TEST_CASE("watch: a view per answer, its line and its environment") {
  const auto v = watch_view(Answer{0, "10.0.0.1:80\n[::1]:81\n"}, Answer{0, "[::1]:81\n"});
  CHECK(v.state == "healthy");
  CHECK(watch_line(v, false) == "[::1]:81");
  CHECK(watch_line(v, true) == "10.0.0.1:80 [::1]:81");
  const auto env = watch_environment("web", v);
  CHECK(env == Environment{{"REGFS_SERVICE", "web"},
                           {"REGFS_STATE", "healthy"},
                           {"REGFS_ENDPOINT", "[::1]:81"},
                           {"REGFS_ENDPOINTS", "10.0.0.1:80 [::1]:81"},
                           {"REGFS_HOST", "::1"},
                           {"REGFS_PORT", "81"}});
  // /registry/<service> failed since .all/ was read: the first stands in.
  CHECK(watch_view(Answer{0, "10.0.0.1:80\n"}, Answer{EHOSTDOWN, ""}).endpoint == "10.0.0.1:80");
  CHECK(watch_view(Answer{EHOSTDOWN, ""}, Answer{}).state == "down");
  CHECK(watch_view(Answer{ENOENT, ""}, Answer{}).state == "missing");
  const auto err = watch_view(Answer{ETIMEDOUT, ""}, Answer{});
  CHECK(err.state == "error");
  CHECK(err.err == ETIMEDOUT);
  CHECK(watch_line(watch_view(Answer{ENOENT, ""}, Answer{}), true).empty());
}
