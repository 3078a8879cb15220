// The tests' change-feed consumer (feed_consumer.h).
#include "tests/feed_consumer.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <simdjson.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "tools/client.h"

namespace tierstream::testing {

FeedConsumer::FeedConsumer(Mode mode, std::function<std::string()> address)
    : mode_(mode), address_(std::move(address)), thread_([this] { Run(); }) {}

FeedConsumer::~FeedConsumer() { Stop(); }

void FeedConsumer::Stop() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
}

std::vector<SeenChange> FeedConsumer::changes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return changes_;
}

bool FeedConsumer::WaitFor(uint64_t cursor, int timeout_seconds) const {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_seconds);
  while (last_.load() < cursor) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

void FeedConsumer::Run() {
  while (!stop_.load()) {
    const std::string address = address_();
    const bool ok = mode_ == Mode::kLongPoll ? LongPollOnce(address) : StreamOnce(address);
    if (!ok && !stop_.load()) {
      ++reconnects_;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
}

bool FeedConsumer::Take(const std::string& json) {
  simdjson::dom::parser parser;
  simdjson::dom::element c;
  if (parser.parse(json).get(c)) return false;
  SeenChange s;
  std::string_view v;
  if (c["cursor"].get(v)) return false;
  s.cursor = std::stoull(std::string(v));
  if (c["user_id"].get(v)) return false;
  s.user_id = v;
  if (c["seq"].get(s.seq)) return false;
  if (c["from"].is_null()) {
    s.from.clear();
  } else if (!c["from"].get(v)) {
    s.from = v;
  } else {
    return false;
  }
  if (c["to"].get(v)) return false;
  s.to = v;
  if (c["at"].get(s.at)) return false;
  simdjson::dom::object cause;
  if (c["cause"].get(cause)) return false;
  if (!cause["event_id"].get(v)) {
    s.cause = "event:" + std::string(v);
  } else if (!cause["rules"].get(v)) {
    s.cause = "rules:" + std::string(v);
  } else {
    s.cause = "time";
  }
  std::lock_guard<std::mutex> lock(mu_);
  changes_.push_back(std::move(s));
  last_.store(changes_.back().cursor);
  return true;
}

bool FeedConsumer::LongPollOnce(const std::string& address) {
  auto res = tools::HttpRequest(
      address, "GET", "/v1/changes?limit=500&wait_ms=500&after=" + std::to_string(last_.load()), {},
      5);
  if (!res.ok() || res->status != 200) return false;
  simdjson::dom::parser parser;
  simdjson::dom::element page;
  if (parser.parse(res->body).get(page)) return false;
  simdjson::dom::array changes;
  if (page["changes"].get(changes)) return false;
  for (simdjson::dom::element c : changes) {
    if (!Take(simdjson::minify(c))) return false;
  }
  // `next` may pass changes the filter left out (none here) and holes.
  std::string_view next;
  if (!page["next"].get(next)) {
    const uint64_t n = std::stoull(std::string(next));
    std::lock_guard<std::mutex> lock(mu_);
    if (n > last_.load()) last_.store(n);
  }
  return true;
}

// HTTP/1.0, so that the body is the raw event stream until the server closes.
bool FeedConsumer::StreamOnce(const std::string& address) {
  const size_t colon = address.rfind(':');
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(std::stoi(address.substr(colon + 1))));
  if (inet_pton(AF_INET, address.substr(0, colon).c_str(), &sa.sin_addr) != 1) return false;
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  struct Closer {
    int fd;
    ~Closer() { close(fd); }
  } closer{fd};
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) return false;
  const std::string request = "GET /v1/changes/stream?after=" + std::to_string(last_.load()) +
                              " HTTP/1.0\r\nHost: tierstream\r\n\r\n";
  if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    return false;
  }
  std::string buf;
  bool header_done = false;
  char chunk[16384];
  while (!stop_.load()) {
    pollfd p{fd, POLLIN, 0};
    const int r = poll(&p, 1, 200);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return false;
    if (r == 0) continue;
    const ssize_t n = recv(fd, chunk, sizeof chunk, 0);
    if (n <= 0) return false;  // the server went away: resume
    buf.append(chunk, static_cast<size_t>(n));
    if (!header_done) {
      const size_t end = buf.find("\r\n\r\n");
      if (end == std::string::npos) continue;
      if (buf.compare(0, 12, "HTTP/1.1 200") != 0 && buf.compare(0, 12, "HTTP/1.0 200") != 0) {
        return false;
      }
      buf.erase(0, end + 4);
      header_done = true;
    }
    size_t end;
    while ((end = buf.find("\n\n")) != std::string::npos) {
      const std::string event = buf.substr(0, end);
      buf.erase(0, end + 2);
      // Lines: "id: ...", "event: ...", "data: ...", or ": comment".
      std::string type, data;
      size_t at = 0;
      while (at <= event.size()) {
        size_t nl = event.find('\n', at);
        if (nl == std::string::npos) nl = event.size();
        const std::string line = event.substr(at, nl - at);
        if (line.rfind("event: ", 0) == 0) type = line.substr(7);
        if (line.rfind("data: ", 0) == 0) data = line.substr(6);
        at = nl + 1;
      }
      if (type == "error") return false;
      if (type == "change" && !Take(data)) return false;
    }
  }
  return true;
}

FeedReport CheckFeed(const std::vector<SeenChange>& changes) {
  FeedReport r;
  std::map<std::string, uint64_t> seq;
  uint64_t last_cursor = 0;
  auto error = [&](std::string m) {
    if (r.errors.size() < 10) r.errors.push_back(std::move(m));
  };
  for (const SeenChange& c : changes) {
    if (c.cursor <= last_cursor) {
      error("cursor " + std::to_string(c.cursor) + " after " + std::to_string(last_cursor));
    }
    last_cursor = std::max(last_cursor, c.cursor);
    const auto prev = r.last_to.find(c.user_id);
    const std::string want_from = prev == r.last_to.end() ? "" : prev->second;
    if (c.from != want_from) {
      error(c.user_id + " seq " + std::to_string(c.seq) + ": from '" + c.from +
            "' but her previous change went to '" + want_from + "'");
    }
    if (c.seq != seq[c.user_id] + 1) {
      error(c.user_id + ": seq " + std::to_string(c.seq) + " after " +
            std::to_string(seq[c.user_id]));
    }
    seq[c.user_id] = c.seq;
    r.last_to[c.user_id] = c.to;
    if (c.cause == "time") ++r.time_changes;
  }
  return r;
}

}  // namespace tierstream::testing
