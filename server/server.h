// The network front of `tierstream serve`: the HTTP API of SPEC §6 and the
// TCP NDJSON ingest port. Each io thread runs its own Boost.Asio io_context
// and accepted connections are spread over them round-robin, so every
// handler of one connection runs on one thread: its batches reach each shard
// in the order it sent them (see Pipeline::Submit). Boost types stay in the
// .cc files.
//
// Thread safety: Run() blocks the calling thread until Stop() (thread-safe,
// also called on SIGINT/SIGTERM).
#ifndef TIERSTREAM_SERVER_SERVER_H_
#define TIERSTREAM_SERVER_SERVER_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "common/status.h"
#include "pipeline/input_stats.h"
#include "pipeline/pipeline.h"
#include "server/cluster_hooks.h"
#include "server/webhook_stats.h"

namespace tierstream::server {

// Beyond --max-connections, up to this many more HTTP connections may each
// send one request within 2 s; only /healthz and /readyz are answered on
// them (503 otherwise), so probes still get through when producers hold
// every slot, and the extra slots cannot be held for long. (serve budgets
// file descriptors for them: app/fd_budget.h.)
inline constexpr int kMaxProbeConnections = 16;

struct ServerOptions {
  std::string http_address = "127.0.0.1:8080";  // empty: no HTTP listener
  std::string tcp_address = "127.0.0.1:9090";   // empty: no TCP listener
  int io_threads = 2;                           // io_contexts, one thread each
  uint64_t max_body_bytes = 64ull << 20;        // larger POST bodies get 413
  // Request bodies held at once, across connections, from their first byte
  // until they are decoded (each charged by its buffer, at most twice what
  // arrived and never more than its Content-Length). Beyond it a body with
  // a Content-Length waits, unread, for up to the idle timeout, then gets
  // 503; a chunked body gets 503. Must exceed max_body_bytes.
  uint64_t max_inflight_body_bytes = 256ull << 20;
  int idle_timeout_seconds = 60;  // a connection silent this long is closed
  // Beyond this, new connections are refused, but for a few HTTP ones that
  // may ask for /healthz or /readyz only.
  int max_connections = 1024;
  // Members per internal page of a streamed tier listing (format=ndjson):
  // what one such response holds in memory at a time.
  size_t tier_export_page = 1000;
  // When set, HTTP requests (but /healthz, /readyz) need "Authorization: Bearer TOKEN"
  // and a TCP connection must open with the line "AUTH TOKEN".
  std::string token;
  // With a token: a connection is unauthenticated until its AUTH line (TCP)
  // or its first request carrying the token (HTTP; a health probe does not
  // count). It must authenticate within this many seconds of connecting or
  // it is closed, and at most `max_unauthenticated` connections may be
  // unauthenticated at once (0: a quarter of max_connections): a new
  // connection beyond that, or one that finds every slot taken, evicts the
  // oldest unauthenticated connection. So peers without the token cannot
  // hold slots that clients with it need.
  int auth_timeout_seconds = 5;
  int max_unauthenticated = 0;
  // After Stop(): how long open connections get to answer what they took
  // (a TCP producer its summary, an HTTP request its answer) before the
  // server closes them anyway.
  int shutdown_grace_seconds = 5;
  // The Kafka mode: events reach this server through a Kafka topic, not
  // from its clients. When set, POST /v1/events answers 409 with this
  // message (where to send them instead); tcp_address must then be empty.
  std::string events_elsewhere;
  // The Kafka mode's consumer figures for /healthz ("kafka") and /metrics
  // (tierstream_kafka_*); empty: none. Called on io threads.
  pipeline::InputStatsFn input_stats;
  // The Kafka mode's cluster (server/http_api.h); empty: none.
  ClusterHooks cluster;
  // The webhooks' figures for /healthz (empty: no webhooks). Called on io
  // threads once the pipeline is attached; must stay callable until the
  // server is destroyed.
  WebhookStatsFn webhook_stats;
};

class Server {
 public:
  // `pipeline` (not owned; must outlive Run()) may be null while it is still
  // being opened (recovery): the server then answers /healthz ("starting")
  // and /readyz (503, "recovering"), 503 to everything else, and binds no TCP
  // listener until AttachPipeline().
  Server(pipeline::Pipeline* pipeline, ServerOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds the HTTP listener, and the TCP one if there is a pipeline, and
  // handles SIGINT/SIGTERM from now on; the error names the address that
  // failed, or the options that do not fit together.
  Status Start();
  // Hands over the opened pipeline (any thread, once, after Start): every
  // endpoint is served from now on and the TCP listener is bound. Unavailable
  // if the server is already stopping.
  Status AttachPipeline(pipeline::Pipeline* pipeline);
  // Serves until Stop() or a signal; then returns. Every io thread's entry
  // catches what a handler throws (std::bad_alloc, ...): it is logged, the
  // server shuts down as on Stop(), and failed() becomes true.
  void Run();
  // Whether an io thread caught an exception (serve then exits 1).
  bool failed() const;
  // Stops accepting; each connection answers what it took (a TCP producer
  // its summary once its batches are durable, an HTTP request in flight its
  // answer) and closes; Run() returns once all are closed, or after
  // `shutdown_grace_seconds`.
  void Stop();
  // The bound ports (useful with port 0).
  uint16_t http_port() const;
  uint16_t tcp_port() const;

  struct Impl;  // server/server_impl.h: shared with the connection sessions

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace tierstream::server

#endif  // TIERSTREAM_SERVER_SERVER_H_
