// Members: how the instances of a Kafka-mode cluster find each other,
// through Kafka itself rather than a coordinator of their own: every second
// each instance produces a record to PREFIX-members (one partition;
// compacted on a real cluster: keyed by instance) saying where its HTTP API
// listens, which partitions it owns under which owner generation, and its
// T; and it reads everyone's:
//   {"instance":"a","address":"10.0.0.5:8080","partitions":[[0,118],[3,7]],
//    "watermark":1714003200000,"at":1764900000000}
// An instance is live while its records keep coming (heard from within the
// last 10 s). A partition's owner is the live instance that reports it under
// the highest generation: after a takeover, until the previous owner's
// record ages out, the new owner's claim is the later one.
//
// Thread safety: thread-safe. Producing and reading run on a thread of its
// own, which also calls `on_watermark`.
#ifndef TIERSTREAM_KAFKA_MEMBERS_H_
#define TIERSTREAM_KAFKA_MEMBERS_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"
#include "kafka/options.h"

namespace tierstream::kafka {

struct MemberInfo {
  std::string instance;
  std::string address;                                    // its HTTP API, "host:port"
  std::vector<std::pair<uint32_t, uint64_t>> partitions;  // (partition, owner generation)
  int64_t watermark = 0;                                  // its T (kNoTs: none yet)
  int64_t at_ms = 0;                                      // when it wrote the record (its clock)
};

class Members {
 public:
  struct Own {
    std::string instance;  // InstanceName(options)
    std::string address;   // this instance's HTTP API, as the others reach it
    std::function<std::vector<std::pair<uint32_t, uint64_t>>()> partitions;
    std::function<int64_t()> watermark;
  };
  // `on_watermark(t)`: the largest T another live instance reports, when it
  // grows.
  static Result<std::unique_ptr<Members>> Start(const KafkaOptions& options, Own own,
                                                std::function<void(int64_t)> on_watermark);
  ~Members();  // Stop()
  Members(const Members&) = delete;
  Members& operator=(const Members&) = delete;

  // Says it owns nothing any more (a last record), and stops.
  void Stop();

  // The other live instances, as last heard.
  std::vector<MemberInfo> Peers() const;
  // The HTTP address of the live instance that owns `partition` (this one's
  // own included), empty if none is known.
  std::string OwnerOf(uint32_t partition) const;

 private:
  struct Impl;
  explicit Members(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Encodes and decodes a member's record (the JSON above).
std::string EncodeMember(const MemberInfo& m);
bool DecodeMember(std::string_view json, MemberInfo* m);

}  // namespace tierstream::kafka

#endif  // TIERSTREAM_KAFKA_MEMBERS_H_
