// `tierstream changes`: prints the change feed of a running server as
// NDJSON, one change per line, from a cursor; with --follow it long-polls
// for more and rides out a server restart.
#include <simdjson.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include "app/commands.h"
#include "common/log.h"
#include "tools/client.h"

namespace tierstream::app {

int RunChanges(const ChangesArgs& args, const ClientArgs& client) {
  std::string token;
  if (!client.token_file.empty()) {
    auto t = tools::ReadTokenFile(client.token_file);
    if (!t.ok()) {
      Log(LogLevel::kError, "tierstream: %s", t.status().ToString().c_str());
      return 2;
    }
    token = *t;
  }
  std::string filters;
  if (!args.to.empty()) filters += "&to=" + tools::UrlEncode(args.to);
  if (!args.from.empty()) filters += "&from=" + tools::UrlEncode(args.from);
  std::string after = args.after;
  simdjson::dom::parser parser;
  for (;;) {
    std::string target = "/v1/changes?limit=1000" + filters;
    if (!after.empty()) target += "&after=" + tools::UrlEncode(after);
    if (args.follow) target += "&wait_ms=30000";
    auto r = tools::HttpRequest(client.http_address, "GET", target, {}, 60, token);
    if (!r.ok() || r->status == 503) {
      const std::string why = r.ok() ? r->body : r.status().ToString();
      if (!args.follow) {
        Log(LogLevel::kError, "tierstream: changes: %s", why.c_str());
        return 1;
      }
      // Following: the server may be restarting; resume from `after`.
      Log(LogLevel::kWarning, "tierstream: changes: %s; retrying", why.c_str());
      std::this_thread::sleep_for(std::chrono::seconds(1));
      continue;
    }
    if (r->status != 200) {
      Log(LogLevel::kError, "tierstream: changes: HTTP %d: %s", r->status, r->body.c_str());
      return 1;
    }
    simdjson::dom::element page;
    simdjson::dom::array changes;
    std::string_view next;
    if (parser.parse(r->body).get(page) || page["changes"].get(changes) || page["next"].get(next)) {
      Log(LogLevel::kError, "tierstream: changes: unexpected answer: %s", r->body.c_str());
      return 1;
    }
    size_t n = 0;
    for (simdjson::dom::element c : changes) {
      std::fputs(simdjson::minify(c).c_str(), stdout);
      std::fputc('\n', stdout);
      ++n;
    }
    if (std::fflush(stdout) != 0) return 1;  // the reader went away
    after = std::string(next);
    if (n == 0 && !args.follow) return 0;
  }
}

}  // namespace tierstream::app
