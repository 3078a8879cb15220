// The Kafka mode's cluster answers (server/http_api.h, ClusterHooks): a
// user's query forwarded to the instance that owns her partition, and the
// KPIs summed over every instance's partitions.
#include <simdjson.h>

#include <charconv>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/json_writer.h"
#include "common/mutex.h"
#include "common/time.h"
#include "server/http_api.h"
#include "server/url.h"

namespace tierstream::server {

namespace {

void ReplyOn(const std::shared_ptr<Executor>& executor, std::function<void(Response)> reply,
             Response response) {
  executor->Post(
      [reply = std::move(reply), r = std::move(response)]() mutable { reply(std::move(r)); });
}

// The KpiPartial counters by name, as /v1/kpis/partitions carries them.
struct Counter {
  const char* name;
  int64_t state::KpiPartial::*field;
};
constexpr Counter kCounters[] = {
    {"users_total", &state::KpiPartial::users_total},
    {"members", &state::KpiPartial::members},
    {"mau", &state::KpiPartial::mau},
    {"dau", &state::KpiPartial::dau},
    {"new_members_30d", &state::KpiPartial::new_members_30d},
    {"orders_30d", &state::KpiPartial::orders_30d},
    {"community_orders_30d", &state::KpiPartial::community_orders_30d},
    {"gmv_30d_fen", &state::KpiPartial::gmv_30d_fen},
    {"refunds_30d_fen", &state::KpiPartial::refunds_30d_fen},
    {"buyers_total", &state::KpiPartial::buyers_total},
    {"repeat_buyers_total", &state::KpiPartial::repeat_buyers_total},
    {"referred_joins_30d", &state::KpiPartial::referred_joins_30d},
    {"referred_joins_prev_30d", &state::KpiPartial::referred_joins_prev_30d},
    {"events_accepted", &state::KpiPartial::events_accepted},
    {"events_duplicate", &state::KpiPartial::events_duplicate},
    {"events_rejected", &state::KpiPartial::events_rejected},
};

std::string RenderPartitionKpis(const pipeline::KpiReport& report) {
  std::string out;
  JsonWriter w(&out);
  w.BeginObject().Key("as_of").Int(report.as_of).Key("total").Int(report.partitions_total);
  w.Key("partitions").BeginArray();
  for (const pipeline::PartitionKpis& p : report.partitions) {
    w.BeginObject().Key("partition").Int(p.partition);
    w.Key("generation").Int(static_cast<int64_t>(p.generation));
    for (const Counter& c : kCounters) w.Key(c.name).Int(p.kpis.*(c.field));
    w.Key("tiers").BeginArray();
    for (int64_t n : p.kpis.tiers) w.Int(n);
    w.EndArray().EndObject();
  }
  w.EndArray().EndObject();
  return out;
}

bool ParsePartitionKpis(const std::string& json, int64_t* as_of, uint32_t* total,
                        std::vector<pipeline::PartitionKpis>* out) {
  simdjson::dom::parser parser;
  simdjson::dom::object o;
  simdjson::dom::array partitions;
  uint64_t n = 0;
  if (parser.parse(json).get(o) || o["as_of"].get(*as_of) || o["total"].get(n) ||
      o["partitions"].get(partitions)) {
    return false;
  }
  *total = static_cast<uint32_t>(n);
  for (simdjson::dom::element e : partitions) {
    pipeline::PartitionKpis p;
    uint64_t partition = 0;
    simdjson::dom::array tiers;
    if (e["partition"].get(partition) || e["generation"].get(p.generation) ||
        e["tiers"].get(tiers) || tiers.size() != p.kpis.tiers.size()) {
      return false;
    }
    p.partition = static_cast<uint32_t>(partition);
    for (const Counter& c : kCounters) {
      if (e[c.name].get(p.kpis.*(c.field))) return false;
    }
    size_t i = 0;
    for (simdjson::dom::element t : tiers) {
      if (t.get(p.kpis.tiers[i++])) return false;
    }
    out->push_back(std::move(p));
  }
  return true;
}

// The answers of one cluster-wide GET /v1/kpis, as they come.
struct KpiMerge {
  Mutex mu;
  size_t pending ABSL_GUARDED_BY(mu) = 0;
  // Each partition's newest owner's share.
  std::map<uint32_t, pipeline::PartitionKpis> partitions ABSL_GUARDED_BY(mu);
  int64_t as_of ABSL_GUARDED_BY(mu) = kNoTs;
  uint32_t total ABSL_GUARDED_BY(mu) = 0;
  Status failure ABSL_GUARDED_BY(mu);
  std::shared_ptr<Executor> executor;
  std::function<void(Response)> reply;

  void Add(int64_t t, uint32_t n, std::vector<pipeline::PartitionKpis> shares, Status s) {
    pipeline::KpiReport report;
    {
      MutexLock lock(&mu);
      if (t != kNoTs) as_of = std::max(as_of, t);
      total = std::max(total, n);
      for (pipeline::PartitionKpis& p : shares) {
        auto [it, fresh] = partitions.emplace(p.partition, p);
        if (!fresh && it->second.generation < p.generation) it->second = std::move(p);
      }
      if (failure.ok() && !s.ok()) failure = s;
      if (--pending > 0) return;
      if (!failure.ok()) {
        ReplyOn(executor, std::move(reply), api::Json(503, ErrorBody(api::QueryFailure(failure))));
        return;
      }
      report.as_of = as_of;
      report.partitioned = true;
      report.partitions_total = total;
      report.partitions_reporting = static_cast<uint32_t>(partitions.size());
      for (const auto& [p, share] : partitions) report.kpis.Add(share.kpis);
    }
    ReplyOn(executor, std::move(reply), api::Json(200, RenderKpisJson(report)));
  }
};

}  // namespace

bool HttpApi::AnsweredElsewhere(const pipeline::Pipeline* pipeline, const std::string& user_id,
                                const Request& request, const std::shared_ptr<Executor>& executor,
                                Reply* reply) {
  uint32_t partition = 0;
  if (pipeline->AnswersFor(user_id, &partition)) return false;
  const std::string owner =
      cluster_.owner_of && !request.forwarded ? cluster_.owner_of(partition) : "";
  if (owner.empty()) {
    (*reply)(api::Json(
        503, ErrorBody("user " + user_id + " lives in partition " + std::to_string(partition) +
                       ", which no instance of the cluster serves now (being taken over?); "
                       "ask again shortly")));
    return true;
  }
  cluster_.get(owner, std::string(request.target),
               [executor, reply = std::move(*reply), owner, partition](int status,
                                                                       std::string body) mutable {
                 if (status == 0) {
                   ReplyOn(executor, std::move(reply),
                           api::Json(503, ErrorBody("partition " + std::to_string(partition) +
                                                    " is served by " + owner +
                                                    ", which did not answer: " + body)));
                   return;
                 }
                 ReplyOn(executor, std::move(reply), api::Json(status, std::move(body)));
               });
  return true;
}

void HttpApi::ProduceEvents(const Request& request, const std::shared_ptr<Executor>& executor,
                            Reply reply) {
  static const ingest::PaddedBuffer kEmpty;
  cluster_.produce_events(
      request.body != nullptr ? *request.body : kEmpty,
      [executor, reply = std::move(reply)](int status, std::string body) mutable {
        ReplyOn(executor, std::move(reply), api::Json(status, std::move(body)));
      });
  if (request.release_body) request.release_body();
}

void HttpApi::PartitionKpis(pipeline::Pipeline* pipeline, std::string_view query,
                            const std::shared_ptr<Executor>& executor, Reply reply) {
  // The asker's T: this instance's becomes at least that, so that both
  // count as of the same T.
  bool malformed = false;
  if (std::optional<std::string> as_of = QueryParam(query, "as_of", &malformed)) {
    int64_t t = 0;
    auto r = std::from_chars(as_of->data(), as_of->data() + as_of->size(), t);
    if (r.ec != std::errc() || r.ptr != as_of->data() + as_of->size()) {
      return reply(api::Json(400, ErrorBody("as_of: expected ms since the epoch")));
    }
    pipeline->ObserveWatermark(t);
  }
  pipeline->GetKpis([executor, reply = std::move(reply)](pipeline::KpiReport kpis) mutable {
    ReplyOn(executor, std::move(reply),
            kpis.status.ok() ? api::Json(200, RenderPartitionKpis(kpis))
                             : api::Json(503, ErrorBody(api::QueryFailure(kpis.status))));
  });
}

void HttpApi::ClusterKpis(pipeline::Pipeline* pipeline, const std::shared_ptr<Executor>& executor,
                          Reply reply) {
  const std::vector<std::string> peers = cluster_.peers();
  auto merge = std::make_shared<KpiMerge>();
  merge->executor = executor;
  merge->reply = std::move(reply);
  {
    MutexLock lock(&merge->mu);
    merge->pending = peers.size() + 1;
  }
  const int64_t t = pipeline->watermark();
  const std::string target =
      "/v1/kpis/partitions" + (t == kNoTs ? std::string() : "?as_of=" + std::to_string(t));
  for (const std::string& peer : peers) {
    cluster_.get(peer, target, [merge](int status, std::string body) {
      int64_t as_of = kNoTs;
      uint32_t total = 0;
      std::vector<pipeline::PartitionKpis> shares;
      // A peer that does not answer leaves its partitions out: "reporting"
      // says so.
      if (status != 200 || !ParsePartitionKpis(body, &as_of, &total, &shares)) shares.clear();
      merge->Add(as_of, total, std::move(shares), Status::Ok());
    });
  }
  pipeline->GetKpis([merge](pipeline::KpiReport kpis) {
    merge->Add(kpis.as_of, kpis.partitions_total, std::move(kpis.partitions), kpis.status);
  });
}

}  // namespace tierstream::server
