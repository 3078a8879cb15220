// Routes the HTTP API's requests to the pipeline and renders its answers.
#include "server/http_api.h"

#include <atomic>
#include <charconv>
#include <optional>
#include <utility>

#include "common/json_writer.h"
#include "server/url.h"
#include "state/user_state.h"

namespace tierstream::server {

namespace {

constexpr std::string_view kUsers = "/v1/users/";
constexpr std::string_view kExplain = "/explain";  // after the user id
constexpr std::string_view kTiers = "/v1/tiers/";

std::string_view PathOf(std::string_view target) { return target.substr(0, target.find('?')); }

Response MethodNotAllowed(const char* allow) {
  Response res;
  res.status = 405;
  res.headers.emplace_back("Allow", allow);
  res.body = ErrorBody("method not allowed; use " + std::string(allow));
  return res;
}

Response BadRequest(std::string_view message) { return api::Json(400, ErrorBody(message)); }

// Percent-decodes the user id of a /v1/users/ path into *user_id; the 400
// to answer when it is not one.
std::optional<Response> DecodeUserId(std::string_view raw, std::string* user_id) {
  if (!PercentDecode(raw, user_id)) return BadRequest("user_id: malformed percent-encoding");
  if (user_id->empty() || user_id->size() > 128) {
    return BadRequest("user_id: must be 1..128 bytes");
  }
  return std::nullopt;
}

// 503 for a query a shard could not answer: its store read failed, or the
// shard itself did (a pipeline part failed).
Response StoreReadFailed(const Status& status) {
  return api::Json(503, ErrorBody(api::QueryFailure(status)));
}

// Answers from a pipeline worker thread: hops onto the connection's thread.
void ReplyLater(const std::shared_ptr<Executor>& executor, std::function<void(Response)> reply,
                Response response) {
  executor->Post(
      [reply = std::move(reply), r = std::move(response)]() mutable { reply(std::move(r)); });
}

// Why ingest is not possible right now; empty when it is.
std::vector<std::string> NotReadyReasons(pipeline::Pipeline* pipeline) {
  if (pipeline == nullptr) return {"recovering"};
  return pipeline->IngestRefusals();
}

// Readiness: may this instance take traffic (ingest) now?
Response Readiness(pipeline::Pipeline* pipeline) {
  const std::vector<std::string> reasons = NotReadyReasons(pipeline);
  std::string body;
  JsonWriter w(&body);
  w.BeginObject().Key("ready").Bool(reasons.empty());
  if (!reasons.empty()) {
    w.Key("reasons").BeginArray();
    for (const auto& r : reasons) w.String(r);
    w.EndArray();
  }
  w.EndObject();
  return api::Json(reasons.empty() ? 200 : 503, std::move(body));
}

}  // namespace

namespace api {
Response Json(int status, std::string body) {
  Response res;
  res.status = status;
  res.headers.emplace_back("Server", "tierstream");
  res.body = std::move(body);
  return res;
}

std::string QueryFailure(const Status& failure) {
  if (failure.code() == StatusCode::kInternal) return failure.ToString();
  return "store read failed: " + failure.ToString();
}
}  // namespace api

HttpApi::HttpApi(const std::atomic<pipeline::Pipeline*>* pipeline, size_t tier_export_page,
                 WebhookStatsFn webhook_stats)
    : pipeline_(pipeline),
      tier_export_page_(std::max<size_t>(tier_export_page, 1)),
      webhook_stats_(std::move(webhook_stats)) {
  if (!webhook_stats_) return;
  // /metrics: the same figures, labelled by the webhook's stable id.
  webhook_figures_ = [stats = webhook_stats_] {
    std::vector<WebhookFigures> figures;
    for (const WebhookStats& s : stats()) {
      figures.push_back(
          {s.id, s.lag_changes, s.lag_seconds, s.delivered_batches, s.failures_total});
    }
    return figures;
  };
}

bool HttpApi::TakesBody(std::string_view target) { return PathOf(target) == "/v1/events"; }

bool HttpApi::IsHealth(std::string_view target) {
  const std::string_view path = PathOf(target);
  return path == "/healthz" || path == "/readyz";
}

void HttpApi::Handle(const Request& request, std::shared_ptr<Executor> executor, Reply reply) {
  const std::string_view path = PathOf(request.target);
  const std::string_view query =
      path.size() < request.target.size() ? request.target.substr(path.size() + 1) : "";
  const bool get = request.method == "GET";
  pipeline::Pipeline* const pipeline = pipeline_->load(std::memory_order_acquire);
  // Only an ingest reads its body; the others' go now.
  const bool ingest = TakesBody(path) && request.method == "POST" && pipeline != nullptr &&
                      (events_elsewhere_.empty() || cluster_.produce_events);
  if (!ingest && request.release_body) request.release_body();
  if (IsHealth(path)) {
    if (!get) return reply(MethodNotAllowed("GET"));
    if (path == "/readyz") return reply(Readiness(pipeline));
    return Health(pipeline, executor, std::move(reply));
  }
  if (pipeline == nullptr)
    return reply(api::Json(503, ErrorBody("starting: recovery in progress")));
  if (path == "/v1/events") {
    if (request.method != "POST") return reply(MethodNotAllowed("POST"));
    if (cluster_.produce_events) return ProduceEvents(request, executor, std::move(reply));
    if (!events_elsewhere_.empty()) return reply(api::Json(409, ErrorBody(events_elsewhere_)));
    return api::PostEvents(pipeline, request, &ingest_metrics_.http, std::move(executor),
                           std::move(reply));
  }
  if (path == "/metrics") {
    if (!get) return reply(MethodNotAllowed("GET"));
    return Metrics(pipeline, executor, std::move(reply));
  }
  if (path == "/v1/kpis/partitions") {
    if (!get) return reply(MethodNotAllowed("GET"));
    return PartitionKpis(pipeline, query, executor, std::move(reply));
  }
  if (path == "/v1/kpis") {
    if (!get) return reply(MethodNotAllowed("GET"));
    if (cluster_.get && !request.forwarded)
      return ClusterKpis(pipeline, executor, std::move(reply));
    pipeline->GetKpis([executor, reply = std::move(reply)](pipeline::KpiReport kpis) mutable {
      ReplyLater(executor, std::move(reply),
                 kpis.status.ok() ? api::Json(200, RenderKpisJson(kpis))
                                  : api::Json(503, ErrorBody(api::QueryFailure(kpis.status))));
    });
    return;
  }
  if (path == "/v1/changes" || path == "/v1/changes/stream") {
    if (!get) return reply(MethodNotAllowed("GET"));
    if (!pipeline->change_log()) {
      return reply(api::Json(404, ErrorBody("the change log is off (config: changes.enabled)")));
    }
    if (path == "/v1/changes") return api::GetChanges(pipeline, query, executor, std::move(reply));
    return api::StreamChanges(pipeline, query, request.last_event_id, executor, std::move(reply));
  }
  if (path.substr(0, kUsers.size()) == kUsers) {
    if (!get) return reply(MethodNotAllowed("GET"));
    const std::string_view rest = path.substr(kUsers.size());
    // An id holding "/" is percent-encoded ("%2F"): a raw "/explain" ends it.
    if (rest.ends_with(kExplain)) {
      return Explain(pipeline, rest.substr(0, rest.size() - kExplain.size()), request, executor,
                     std::move(reply));
    }
    return Users(pipeline, rest, request, executor, std::move(reply));
  }
  if (path.substr(0, kTiers.size()) == kTiers) {
    std::string_view rest = path.substr(kTiers.size());
    size_t slash = rest.find('/');
    if (slash == std::string_view::npos || rest.substr(slash) != "/users") {
      return reply(api::Json(404, ErrorBody("no such resource")));
    }
    if (!get) return reply(MethodNotAllowed("GET"));
    return Tiers(pipeline, rest.substr(0, slash), query, executor, std::move(reply));
  }
  reply(api::Json(404, ErrorBody("no such resource")));
}

// Liveness (200 whenever the process answers) with the operational figures:
// "status" is "ok", "degraded" (ingest refused; see "reasons") or
// "starting" (recovery runs; no figures yet).
void HttpApi::Health(pipeline::Pipeline* pipeline, const std::shared_ptr<Executor>& executor,
                     Reply reply) {
  std::vector<std::string> reasons = NotReadyReasons(pipeline);
  if (pipeline == nullptr) {
    return reply(api::Json(200, RenderHealthJson("starting", reasons, kNoTs, nullptr)));
  }
  const int64_t t = pipeline->watermark();
  std::vector<WebhookStats> webhooks;
  if (webhook_stats_) webhooks = webhook_stats_();
  std::optional<pipeline::InputStats> input;
  if (input_stats_) input = input_stats_();
  pipeline->GetStats([executor, reply = std::move(reply), t, reasons = std::move(reasons),
                      webhooks = std::move(webhooks),
                      input = std::move(input)](pipeline::PipelineStats stats) mutable {
    const char* status = reasons.empty() ? "ok" : "degraded";
    ReplyLater(executor, std::move(reply),
               api::Json(200, RenderHealthJson(status, reasons, t, &stats, &webhooks,
                                               input ? &*input : nullptr)));
  });
}

// One GetStats and one GetKpis, asked at once; the later answer renders
// the exposition on the connection's thread. Both are aggregates (KPIs are
// sums of day cells), so a scrape costs the same at any user count.
void HttpApi::Metrics(pipeline::Pipeline* pipeline, const std::shared_ptr<Executor>& executor,
                      Reply reply) {
  struct Scrape {
    std::atomic<int> pending{2};
    MetricsInput input;  // stats and kpis: each written by one answer
    std::shared_ptr<Executor> executor;
    Reply reply;
  };
  auto scrape = std::make_shared<Scrape>();
  scrape->input.ingest = &ingest_metrics_;
  scrape->input.recovery = pipeline->recovery();
  scrape->input.ready = pipeline->IngestRefusals().empty();
  scrape->input.change_log = pipeline->change_log();
  scrape->input.changes_end = pipeline->ChangesEnd();
  if (input_stats_) scrape->input.input = input_stats_();
  scrape->executor = executor;
  scrape->reply = std::move(reply);
  // The last answer (acq_rel: it sees the other's write) hands over.
  auto answered = [webhooks = webhook_figures_](const std::shared_ptr<Scrape>& s) {
    if (s->pending.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
    if (webhooks) s->input.webhooks = webhooks();
    s->executor->Post([s] {
      Response res = api::Json(200, RenderMetrics(s->input));
      res.content_type = kMetricsContentType;
      std::exchange(s->reply, nullptr)(std::move(res));
    });
  };
  pipeline->GetStats([scrape, answered](pipeline::PipelineStats stats) {
    scrape->input.stats = std::move(stats);
    answered(scrape);
  });
  pipeline->GetKpis([scrape, answered](pipeline::KpiReport kpis) {
    scrape->input.kpis = std::move(kpis);
    answered(scrape);
  });
}

void HttpApi::Users(pipeline::Pipeline* pipeline, std::string_view id, const Request& request,
                    const std::shared_ptr<Executor>& executor, Reply reply) {
  std::string user_id;
  if (auto bad = DecodeUserId(id, &user_id)) return reply(std::move(*bad));
  if (AnsweredElsewhere(pipeline, user_id, request, executor, &reply)) return;
  pipeline->GetUser(std::move(user_id), [executor, reply = std::move(reply)](
                                            std::optional<pipeline::ProfileReport> p) mutable {
    if (p && !p->status.ok()) {
      return ReplyLater(executor, std::move(reply), StoreReadFailed(p->status));
    }
    ReplyLater(
        executor, std::move(reply),
        p ? api::Json(200, RenderProfileJson(*p)) : api::Json(404, ErrorBody("unknown user")));
  });
}

// Answered like GET /v1/users/{id}: 404 unknown, 503 when her state cannot
// be read back.
void HttpApi::Explain(pipeline::Pipeline* pipeline, std::string_view id, const Request& request,
                      const std::shared_ptr<Executor>& executor, Reply reply) {
  std::string user_id;
  if (auto bad = DecodeUserId(id, &user_id)) return reply(std::move(*bad));
  if (AnsweredElsewhere(pipeline, user_id, request, executor, &reply)) return;
  pipeline->ExplainUser(std::move(user_id), [executor, reply = std::move(reply)](
                                                std::optional<pipeline::ExplainReport> x) mutable {
    if (x && !x->status.ok()) {
      return ReplyLater(executor, std::move(reply), StoreReadFailed(x->status));
    }
    ReplyLater(
        executor, std::move(reply),
        x ? api::Json(200, RenderExplainJson(*x)) : api::Json(404, ErrorBody("unknown user")));
  });
}

void HttpApi::Tiers(pipeline::Pipeline* pipeline, std::string_view tier_name,
                    std::string_view query, const std::shared_ptr<Executor>& executor,
                    Reply reply) {
  auto tier = state::ParseTier(tier_name);
  if (!tier) {
    return reply(
        BadRequest("tier: must be one of left, high_value, new, active, dormant, regular"));
  }
  constexpr const char* kParams[] = {"limit", "after", "format", "fields"};
  std::optional<std::string> params[4];
  for (size_t i = 0; i < 4; ++i) {
    bool malformed = false;
    params[i] = QueryParam(query, kParams[i], &malformed);
    if (malformed)
      return reply(BadRequest(std::string(kParams[i]) + ": malformed percent-encoding"));
  }
  const auto& [limit_param, after_param, format_param, fields_param] = params;
  const bool ndjson = format_param == "ndjson";
  if (format_param && !ndjson && *format_param != "json") {
    return reply(BadRequest("format: must be json or ndjson"));
  }
  if (fields_param && *fields_param != "profile")
    return reply(BadRequest("fields: must be profile"));
  if (fields_param && !ndjson) return reply(BadRequest("fields: needs format=ndjson"));
  std::string after = after_param.value_or("");
  if (ndjson) {
    if (limit_param) {
      return reply(BadRequest(
          "limit: not with format=ndjson, which streams the whole tier (after= resumes it)"));
    }
    Response res = api::Json(200, {});
    res.content_type = "application/x-ndjson";
    res.stream = api::TierListing(pipeline, *tier, std::move(after), fields_param.has_value(),
                                  tier_export_page_, executor);
    return reply(std::move(res));
  }
  size_t limit = 100;
  if (limit_param) {
    const std::string& l = *limit_param;
    unsigned long v = 0;
    auto r = std::from_chars(l.data(), l.data() + l.size(), v);
    if (r.ec != std::errc() || r.ptr != l.data() + l.size() || v < 1 || v > 10000) {
      return reply(BadRequest("limit: must be an integer in 1..10000"));
    }
    limit = v;
  }
  pipeline->ListTierPage(
      *tier, std::move(after), limit, false /*with_profiles*/,
      [executor, reply = std::move(reply), tier = *tier](pipeline::TierPage page) mutable {
        if (!page.status.ok()) {
          return ReplyLater(executor, std::move(reply),
                            api::Json(503, ErrorBody(api::QueryFailure(page.status))));
        }
        ReplyLater(executor, std::move(reply), api::Json(200, RenderTierPageJson(tier, page)));
      });
}

}  // namespace tierstream::server
