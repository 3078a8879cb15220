// The change feed over HTTP: GET /v1/changes (pages, long-polled with
// wait_ms) and GET /v1/changes/stream (Server-Sent Events).
#include <charconv>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "server/http_api.h"
#include "server/url.h"

namespace tierstream::server::api {

namespace {

constexpr size_t kDefaultLimit = 100;
constexpr size_t kMaxLimit = 10000;
constexpr int64_t kMaxWaitMs = 60'000;
constexpr size_t kStreamPage = 500;
constexpr std::chrono::seconds kHeartbeat{15};

struct FeedQuery {
  uint64_t after = pipeline::Pipeline::kChangesFromOldest;
  pipeline::ChangeFilter filter;
  size_t limit = kDefaultLimit;
  int64_t wait_ms = 0;
};

bool ParseUint(std::string_view s, uint64_t* v) {
  auto r = std::from_chars(s.data(), s.data() + s.size(), *v);
  return !s.empty() && r.ec == std::errc() && r.ptr == s.data() + s.size();
}

// "new,dormant" -> a bit per tier; "null" (from only) for a first tier.
bool ParseTiers(std::string_view list, bool allow_null, uint32_t* mask) {
  *mask = 0;
  while (true) {
    const size_t comma = list.find(',');
    const std::string_view name = list.substr(0, comma);
    if (allow_null && name == "null") {
      *mask |= 1u << static_cast<int>(state::Tier::kNone);
    } else if (auto t = state::ParseTier(name)) {
      *mask |= 1u << static_cast<int>(*t);
    } else {
      return false;
    }
    if (comma == std::string_view::npos) return true;
    list.remove_prefix(comma + 1);
  }
}

Result<FeedQuery> ParseFeedQuery(pipeline::Pipeline* pipeline, std::string_view query,
                                 std::string_view last_event_id, bool stream) {
  constexpr const char* kParams[] = {"after", "limit", "wait_ms", "to", "from"};
  std::optional<std::string> params[5];
  for (size_t i = 0; i < 5; ++i) {
    bool malformed = false;
    params[i] = QueryParam(query, kParams[i], &malformed);
    if (malformed) {
      return Status::InvalidArgument(std::string(kParams[i]) + ": malformed percent-encoding");
    }
  }
  const auto& [after, limit, wait_ms, to, from] = params;
  FeedQuery q;
  // The stream resumes after the last id its client got (an EventSource
  // sends it when it reconnects); ?after= says where a new one starts.
  std::optional<std::string> start = after;
  if (!start && stream && !last_event_id.empty()) start = std::string(last_event_id);
  if (start) {
    if (*start == "end") {
      q.after = pipeline->ChangesEnd();
    } else if (!ParseUint(*start, &q.after) || q.after == pipeline::Pipeline::kChangesFromOldest) {
      return Status::InvalidArgument(
          std::string(after ? "after" : "Last-Event-ID") +
          ": must be a cursor this feed gave (\"next\", a change's \"cursor\") or \"end\"");
    }
  }
  uint64_t v;
  if (limit) {
    if (stream) return Status::InvalidArgument("limit: not with the stream");
    if (!ParseUint(*limit, &v) || v < 1 || v > kMaxLimit) {
      return Status::InvalidArgument("limit: must be an integer in 1.." +
                                     std::to_string(kMaxLimit));
    }
    q.limit = v;
  }
  if (wait_ms) {
    if (stream) return Status::InvalidArgument("wait_ms: not with the stream, which waits anyway");
    if (!ParseUint(*wait_ms, &v) || v > static_cast<uint64_t>(kMaxWaitMs)) {
      return Status::InvalidArgument("wait_ms: must be an integer in 0..60000");
    }
    q.wait_ms = static_cast<int64_t>(v);
  }
  if (to && !ParseTiers(*to, false, &q.filter.to)) {
    return Status::InvalidArgument(
        "to: must be tiers among left, high_value, new, active, dormant, regular, comma-separated");
  }
  if (from && !ParseTiers(*from, true, &q.filter.from)) {
    return Status::InvalidArgument(
        "from: must be tiers among left, high_value, new, active, dormant, regular and null (a "
        "first tier), comma-separated");
  }
  return q;
}

Response Gone(uint64_t after, uint64_t oldest) {
  return Json(410, RenderChangesGoneJson(after, oldest));
}

Response ReadFailed(const Status& s) {
  return Json(503, ErrorBody("change feed read failed: " + s.ToString()));
}

// One long-polled page: answers at once when a matching change is there,
// else as soon as one becomes durable, or with an empty page (and the same
// `next`) when the wait ends.
class LongPoll : public std::enable_shared_from_this<LongPoll> {
 public:
  LongPoll(pipeline::Pipeline* pipeline, FeedQuery q, std::shared_ptr<Executor> executor,
           std::function<void(Response)> reply)
      : pipeline_(pipeline), q_(q), executor_(std::move(executor)), reply_(std::move(reply)) {}

  // On the connection's thread, like every step after it.
  void Start() {
    if (q_.after == pipeline::Pipeline::kChangesFromOldest) {
      // Without after=: from the oldest retained (resolved once, so that
      // an empty answer's `next` is a cursor).
      q_.after = pipeline_->ReadChanges(q_.after, 0, q_.filter).next;
    }
    Read(true);
  }

 private:
  void Read(bool first) {
    if (done_) return;
    pipeline::ChangePage page = pipeline_->ReadChanges(q_.after, q_.limit, q_.filter);
    if (page.gone) return Finish(Gone(q_.after, page.oldest));
    if (!page.status.ok()) return Finish(ReadFailed(page.status));
    q_.after = page.next;
    if (!page.changes.empty() || q_.wait_ms == 0 || timed_out_) {
      return Finish(Json(200, RenderChangesJson(page)));
    }
    auto self = shared_from_this();
    token_ = pipeline_->OnChangesAfter(q_.after, [self] {
      self->executor_->Post([self] {
        self->token_ = 0;
        self->Read(false);
      });
    });
    if (first) {
      executor_->PostAfter(std::chrono::milliseconds(q_.wait_ms), [self] {
        if (self->done_) return;
        self->timed_out_ = true;
        if (self->token_ == 0 || self->pipeline_->CancelChangesWait(self->token_))
          self->Read(false);
      });
    }
  }

  void Finish(Response r) {
    done_ = true;
    if (token_ != 0) pipeline_->CancelChangesWait(token_);
    reply_(std::move(r));
  }

  pipeline::Pipeline* const pipeline_;
  FeedQuery q_;
  std::shared_ptr<Executor> executor_;
  std::function<void(Response)> reply_;
  uint64_t token_ = 0;
  bool timed_out_ = false;
  bool done_ = false;
};

// Server-Sent Events: each change as "id: <cursor>\nevent: change\ndata:
// <json>\n\n", a heartbeat comment after 15 s without one, and an "error"
// event before the end when the cursor is past retention or the store
// cannot be read.
class ChangeStream : public BodyStream, public std::enable_shared_from_this<ChangeStream> {
 public:
  ChangeStream(pipeline::Pipeline* pipeline, FeedQuery q, std::shared_ptr<Executor> executor)
      : pipeline_(pipeline), q_(q), executor_(std::move(executor)) {}

  void Next(std::function<void(std::string piece)> piece) override {
    if (ended_) return piece({});
    piece_ = std::move(piece);
    ++generation_;
    asked_ = std::chrono::steady_clock::now();
    if (!started_) {
      started_ = true;
      // The first piece goes at once: a client sees the stream is open.
      return Deliver(": tierstream change feed\nretry: 1000\n\n");
    }
    Read();
  }

 private:
  void Read() {
    pipeline::ChangePage page = pipeline_->ReadChanges(q_.after, kStreamPage, q_.filter);
    if (page.gone || !page.status.ok()) {
      ended_ = true;
      const std::string data =
          page.gone ? RenderChangesGoneJson(q_.after, page.oldest)
                    : ErrorBody("change feed read failed: " + page.status.ToString());
      return Deliver("event: error\ndata: " + data + "\n\n");
    }
    q_.after = page.next;
    if (!page.changes.empty()) {
      std::string out;
      for (const auto& [cursor, change] : page.changes) {
        out += "id: " + std::to_string(cursor) + "\nevent: change\ndata: ";
        out += RenderChangeJson(cursor, change);
        out += "\n\n";
      }
      return Deliver(std::move(out));
    }
    auto self = shared_from_this();
    const uint64_t generation = generation_;
    token_ = pipeline_->OnChangesAfter(q_.after, [self, generation] {
      self->executor_->Post([self, generation] {
        if (self->generation_ != generation || !self->piece_) return;
        self->token_ = 0;
        self->Read();
      });
    });
    if (!timer_pending_) ArmHeartbeat(kHeartbeat);
  }

  // One timer at a time: when it fires for an ask younger than the
  // heartbeat period, it waits again for the rest.
  void ArmHeartbeat(std::chrono::steady_clock::duration delay) {
    timer_pending_ = true;
    auto self = shared_from_this();
    executor_->PostAfter(std::chrono::duration_cast<std::chrono::milliseconds>(delay), [self] {
      self->timer_pending_ = false;
      if (!self->piece_) return;  // no ask waiting: the next one arms it
      const auto waited = std::chrono::steady_clock::now() - self->asked_;
      if (waited < kHeartbeat) return self->ArmHeartbeat(kHeartbeat - waited);
      if (self->token_ != 0) self->pipeline_->CancelChangesWait(self->token_);
      self->token_ = 0;
      self->Deliver(": heartbeat\n\n");
    });
  }

  void Deliver(std::string data) {
    auto piece = std::move(piece_);
    piece_ = nullptr;
    piece(std::move(data));
  }

  pipeline::Pipeline* const pipeline_;
  FeedQuery q_;
  std::shared_ptr<Executor> executor_;
  std::function<void(std::string)> piece_;       // the session's ask, while it waits
  uint64_t generation_ = 0;                      // of the current ask
  std::chrono::steady_clock::time_point asked_;  // when the current ask came
  uint64_t token_ = 0;
  bool timer_pending_ = false;
  bool started_ = false;
  bool ended_ = false;
};

}  // namespace

void GetChanges(pipeline::Pipeline* pipeline, std::string_view query,
                std::shared_ptr<Executor> executor, std::function<void(Response)> reply) {
  Result<FeedQuery> q = ParseFeedQuery(pipeline, query, {}, false);
  if (!q.ok()) return reply(Json(400, ErrorBody(q.status().message())));
  std::make_shared<LongPoll>(pipeline, *q, std::move(executor), std::move(reply))->Start();
}

void StreamChanges(pipeline::Pipeline* pipeline, std::string_view query,
                   std::string_view last_event_id, std::shared_ptr<Executor> executor,
                   std::function<void(Response)> reply) {
  Result<FeedQuery> q = ParseFeedQuery(pipeline, query, last_event_id, true);
  if (!q.ok()) return reply(Json(400, ErrorBody(q.status().message())));
  if (q->after == pipeline::Pipeline::kChangesFromOldest) {
    q->after = pipeline->ReadChanges(q->after, 0, q->filter).next;
  }
  Response res = Json(200, {});
  res.content_type = "text/event-stream";
  res.headers.emplace_back("Cache-Control", "no-cache");
  res.stream = std::make_shared<ChangeStream>(pipeline, *q, std::move(executor));
  reply(std::move(res));
}

}  // namespace tierstream::server::api
