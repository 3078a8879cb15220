// Event: one validated event of SPEC §1, decoded from NDJSON.
//
// Strings are borrowed: they point into an Arena owned by whoever decoded the
// event (a Batch), and live as long as it. Money is integer fen; time is
// event-time milliseconds since the Unix epoch.
#ifndef TIERSTREAM_INGEST_EVENT_H_
#define TIERSTREAM_INGEST_EVENT_H_

#include <cstdint>
#include <string_view>

namespace tierstream::ingest {

enum class EventType : uint8_t {
  kMessage = 0,
  kReaction = 1,
  kCheckin = 2,
  kShare = 3,
  kJoin = 4,
  kLeave = 5,
  kOrder = 6,
  kRefund = 7,
  // Internal: the referral credit a `join` sends to its referrer's shard.
  // user_id is the referrer, referrer_id the joining member.
  kReferralCredit = 8,
};

inline bool IsInteraction(EventType t) { return static_cast<uint8_t>(t) <= 3; }
inline bool IsMembership(EventType t) { return t == EventType::kJoin || t == EventType::kLeave; }

std::string_view EventTypeName(EventType t);

struct Event {
  std::string_view event_id;
  std::string_view user_id;
  std::string_view referrer_id;  // join only; empty when absent
  int64_t ts_ms = 0;
  int64_t amount_fen = 0;  // order and refund only
  EventType type = EventType::kMessage;
  bool community = false;  // order only: channel == "community"
};

}  // namespace tierstream::ingest

#endif  // TIERSTREAM_INGEST_EVENT_H_
