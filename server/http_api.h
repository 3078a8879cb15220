// HttpApi: the HTTP API of SPEC §6 without the HTTP: routing, parameter
// checks and the pipeline calls, from a plain Request to a plain Response;
// the pipeline's typed answers are rendered by server/wire_json.h. No
// Boost type crosses it; the HTTP session (server/http_session.h) reads and
// frames requests, checks the token and the body budget, and writes what it
// is given.
//
// Most answers come from the pipeline's worker threads, so Handle() is
// asynchronous: it answers through `reply`, which it runs exactly once, on
// the connection's thread (through its Executor), possibly before Handle()
// returns. A streamed answer (a tier listing with format=ndjson) carries a
// BodyStream the session pulls pieces from, one at a time, so that memory
// holds one page whatever the tier's size and a slow reader slows the
// listing down instead of being buffered for.
//
// Ownership: holds neither the pipeline nor the connections; what an answer
// in progress needs (the Executor, the body) is kept alive by its callbacks.
// Thread safety: thread-safe (Handle may be called from every io thread).
#ifndef TIERSTREAM_SERVER_HTTP_API_H_
#define TIERSTREAM_SERVER_HTTP_API_H_

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ingest/decoder.h"
#include "pipeline/pipeline.h"
#include "server/cluster_hooks.h"
#include "server/ingest_metrics.h"
#include "server/metrics.h"
#include "server/webhook_stats.h"
#include "server/wire_json.h"

namespace tierstream::server {

struct Request {
  std::string_view method;  // as sent: "GET", "POST" (case-sensitive, as RFC 9110)
  std::string_view target;  // origin-form: path, then '?' and the query if any
  // The body, for the routes that take one (HttpApi::TakesBody); else null.
  // REQUIRES: outlives the answer, or until `release_body` is called.
  const ingest::PaddedBuffer* body = nullptr;
  // Called once the body is no longer read (its memory may go then), at the
  // latest before `reply`. May be empty.
  std::function<void()> release_body;
  // The Last-Event-ID header (an EventSource resuming), empty if none.
  std::string_view last_event_id;
  // Sent by another instance of the cluster (header X-Tierstream-Forwarded):
  // answered from this instance's own partitions, never forwarded again.
  bool forwarded = false;
};

// Pieces of a streamed body. Confined to its connection's thread.
class BodyStream {
 public:
  virtual ~BodyStream() = default;
  // Asks for the next piece; `piece` runs once, on the connection's thread,
  // with its bytes: empty when the body is complete. One call at a time.
  virtual void Next(std::function<void(std::string piece)> piece) = 0;
  // True once the body ended in an error (its last piece said which): the
  // session then ends the response without completing it (HTTP/1.1: no
  // terminating chunk) and closes the connection, so that a client cannot
  // take what it got for the whole body.
  virtual bool failed() const { return false; }
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  // Written after Content-Type, in this order (Server, Allow, ...).
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  // When set, the body comes from it instead of `body` (chunked on
  // HTTP/1.1; on HTTP/1.0 the body ends when the connection closes).
  std::shared_ptr<BodyStream> stream;
};

// Where an asynchronous answer continues: the connection's own thread, so
// that what a connection submits leaves one producer thread in order.
// Implemented by the HTTP session; thread-safe.
class Executor {
 public:
  virtual ~Executor() = default;
  // Runs `fn` soon on the connection's thread.
  virtual void Post(std::function<void()> fn) = 0;
  // Runs `fn` on the connection's thread after `delay`, unless the
  // connection is closed first. Several may be pending.
  virtual void PostAfter(std::chrono::milliseconds delay, std::function<void()> fn) = 0;
};

class HttpApi {
 public:
  // `pipeline` (not owned) points to the pipeline, null while it is being
  // opened (recovery): then /healthz says "starting", /readyz 503
  // "recovering", and everything else is 503. `tier_export_page`: members
  // per page of a streamed tier listing. `webhook_stats` (may be empty):
  // the webhooks' figures for /healthz once the pipeline is open, and for
  // /metrics (it sets the WebhookFigures hook: label = the webhook's id,
  // deliveries = batches answered 2xx).
  HttpApi(const std::atomic<pipeline::Pipeline*>* pipeline, size_t tier_export_page,
          WebhookStatsFn webhook_stats = {});
  HttpApi(const HttpApi&) = delete;
  HttpApi& operator=(const HttpApi&) = delete;

  // Whether the route of `target` reads a request body (POST /v1/events
  // only); the others' bodies are dropped unread.
  static bool TakesBody(std::string_view target);
  // Whether `target` is a health endpoint (/healthz, /readyz), which needs
  // no token and may be asked on a probe connection.
  static bool IsHealth(std::string_view target);

  // Answers `request`; see the file comment.
  void Handle(const Request& request, std::shared_ptr<Executor> executor,
              std::function<void(Response)> reply);

  // What the ingest sessions count for /metrics: HTTP bodies here, TCP
  // connections by their sessions (server/tcp_ingest_session.cc).
  IngestMetrics& ingest_metrics() { return ingest_metrics_; }

  // Non-empty: POST /v1/events answers 409 with this message (the Kafka
  // mode: events are produced to a topic). Set once, before serving.
  void SetEventsElsewhere(std::string message) { events_elsewhere_ = std::move(message); }
  // The Kafka mode's consumer figures, for /healthz and /metrics (empty:
  // none). Set once, before serving.
  void SetInputStats(pipeline::InputStatsFn stats) { input_stats_ = std::move(stats); }
  // The Kafka mode: a user another instance owns is asked of it, and
  // GET /v1/kpis sums every instance's partitions (empty hooks: this
  // instance answers alone). Set once, before serving.
  void SetCluster(ClusterHooks cluster) { cluster_ = std::move(cluster); }

  // The hook for the webhook dispatcher (see WebhookFigures): `figures` is
  // called once per scrape, on a pipeline worker thread (it must not
  // block), and its entries are exposed. Set it once, before serving.
  void SetWebhookFigures(std::function<std::vector<WebhookFigures>()> figures) {
    webhook_figures_ = std::move(figures);
  }

 private:
  using Reply = std::function<void(Response)>;
  void Health(pipeline::Pipeline* pipeline, const std::shared_ptr<Executor>& executor, Reply reply);
  void Users(pipeline::Pipeline* pipeline, std::string_view id, const Request& request,
             const std::shared_ptr<Executor>& executor, Reply reply);
  void Explain(pipeline::Pipeline* pipeline, std::string_view id, const Request& request,
               const std::shared_ptr<Executor>& executor, Reply reply);
  // The Kafka mode (server/cluster_api.cc): false if this instance answers
  // for `user_id`; else the answer is given — the request forwarded to her
  // partition's owner, or 503 naming the partition.
  bool AnsweredElsewhere(const pipeline::Pipeline* pipeline, const std::string& user_id,
                         const Request& request, const std::shared_ptr<Executor>& executor,
                         Reply* reply);
  // GET /v1/kpis over the cluster: this instance's partitions and every
  // live peer's (GET /v1/kpis/partitions), each partition counted once.
  void ClusterKpis(pipeline::Pipeline* pipeline, const std::shared_ptr<Executor>& executor,
                   Reply reply);
  // POST /v1/events in the Kafka mode: into the input topic.
  void ProduceEvents(const Request& request, const std::shared_ptr<Executor>& executor,
                     Reply reply);
  // GET /v1/kpis/partitions: this instance's share, by partition.
  void PartitionKpis(pipeline::Pipeline* pipeline, std::string_view query,
                     const std::shared_ptr<Executor>& executor, Reply reply);
  void Tiers(pipeline::Pipeline* pipeline, std::string_view tier_name, std::string_view query,
             const std::shared_ptr<Executor>& executor, Reply reply);
  void Metrics(pipeline::Pipeline* pipeline, const std::shared_ptr<Executor>& executor,
               Reply reply);

  const std::atomic<pipeline::Pipeline*>* pipeline_;
  const size_t tier_export_page_;
  const WebhookStatsFn webhook_stats_;
  IngestMetrics ingest_metrics_;
  std::string events_elsewhere_;
  pipeline::InputStatsFn input_stats_;
  ClusterHooks cluster_;
  std::function<std::vector<WebhookFigures>()> webhook_figures_;
};

// Internal to the API's .cc files: the answers they share.
namespace api {
// A JSON answer with the Server header, as every routed answer has.
Response Json(int status, std::string body);
// Why a query's answer carries `failure` (a profile, KPIs or a tier page):
// "store read failed: ..." (retry), or a failed part of the pipeline, which
// says so itself (the server is shutting down).
std::string QueryFailure(const Status& failure);
// POST /v1/events: submits the body and answers its summary; `counters`
// (may be null) counts its batches.
void PostEvents(pipeline::Pipeline* pipeline, const Request& request, IngestCounters* counters,
                std::shared_ptr<Executor> executor, std::function<void(Response)> reply);
// GET /v1/changes: a page of the change feed, long-polled with wait_ms.
void GetChanges(pipeline::Pipeline* pipeline, std::string_view query,
                std::shared_ptr<Executor> executor, std::function<void(Response)> reply);
// GET /v1/changes/stream: the change feed as Server-Sent Events.
void StreamChanges(pipeline::Pipeline* pipeline, std::string_view query,
                   std::string_view last_event_id, std::shared_ptr<Executor> executor,
                   std::function<void(Response)> reply);
// The NDJSON body of a streamed tier listing.
std::shared_ptr<BodyStream> TierListing(pipeline::Pipeline* pipeline, state::Tier tier,
                                        std::string after, bool profiles, size_t page_size,
                                        std::shared_ptr<Executor> executor);
}  // namespace api

}  // namespace tierstream::server

#endif  // TIERSTREAM_SERVER_HTTP_API_H_
