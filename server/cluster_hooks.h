// ClusterHooks: how the HTTP API of a Kafka-mode instance reaches the other
// instances of its cluster (implemented by app/cluster.h over
// kafka/members.h).
#ifndef TIERSTREAM_SERVER_CLUSTER_HOOKS_H_
#define TIERSTREAM_SERVER_CLUSTER_HOOKS_H_

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace tierstream::ingest {
class PaddedBuffer;
}  // namespace tierstream::ingest
namespace tierstream::pipeline {
struct BatchOutcome;
}  // namespace tierstream::pipeline

namespace tierstream::server {

// The Kafka mode's cluster, as the API reaches the other instances
// (kafka/members.h). Every hook is thread-safe.
struct ClusterHooks {
  // The HTTP address of the instance that owns `partition` now; empty if
  // none is known.
  std::function<std::string(uint32_t partition)> owner_of;
  // The HTTP addresses of the other live instances.
  std::function<std::vector<std::string>()> peers;
  // GETs `target` from the instance at `address`, as a forwarded request;
  // `done` runs once, on any thread, with the answer's status and body
  // (status 0: none came; the body says why).
  using GetDone = std::function<void(int status, std::string body)>;
  std::function<void(const std::string& address, const std::string& target, GetDone done)> get;
  // POST /v1/events: produces the body's lines to the input topic
  // (kafka/event_producer.h); `done` runs once, on any thread, with the
  // answer's status and JSON body. The body is not used after the call.
  std::function<void(const ingest::PaddedBuffer& body, GetDone done)> produce_events;
  // TCP ingest: complete lines (numbered from `first_line`; padded, not
  // read after the call) into the input topic; `done` runs once Kafka has
  // them, on any thread (server/ingest_session.h, LineProducer).
  std::function<void(std::string_view lines, uint64_t first_line,
                     std::function<void(pipeline::BatchOutcome)> done)>
      produce_lines;
};

// The header that marks a request as forwarded by another instance.
inline constexpr char kForwardedHeader[] = "X-Tierstream-Forwarded";

}  // namespace tierstream::server

#endif  // TIERSTREAM_SERVER_CLUSTER_HOOKS_H_
