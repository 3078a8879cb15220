// `tierstream load`: a load generator for a running server. It cuts NDJSON
// files into chunks, sends them over several connections (TCP: one
// connection per chunk, timed from its first byte to the summary line, which
// the server sends only once the chunk is durable; HTTP: one POST per chunk),
// optionally paced to a target rate, optionally while another thread times
// GET /v1/users/{id} and GET /v1/kpis, optionally while a long-poll consumer
// of the change feed times each change from the ack of its causing event to
// its arrival. It prints one JSON object: events/s, latency percentiles, the
// longest gap between two acknowledgements, and the server's totals. Thread safety: RunLoad is
// self-contained.
#ifndef TIERSTREAM_TOOLS_LOAD_H_
#define TIERSTREAM_TOOLS_LOAD_H_

#include <cstdint>
#include <string>
#include <vector>

namespace tierstream::tools {

struct LoadArgs {
  std::vector<std::string> files;
  std::string tcp_address;   // ingest over TCP when set ...
  std::string http_address;  // ... else POST to HTTP; queries always go to HTTP
  std::string token_file;
  int connections = 4;
  size_t chunk_events = 10000;
  double rate = 0;        // events/s across connections; 0 = as fast as acknowledged
  double query_rate = 0;  // user + kpis queries per second while loading; 0 = none
  bool ordered = false;   // one connection sends chunks in file order
  // Follow GET /v1/changes (long poll) while loading and time each change
  // from the ack of the event that caused it to its arrival (a sample of
  // events, by a hash of their id).
  bool follow_changes = false;
};

int RunLoad(const LoadArgs& args);

}  // namespace tierstream::tools

#endif  // TIERSTREAM_TOOLS_LOAD_H_
