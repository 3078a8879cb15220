// BatchEvaluator: a deliberately simple batch implementation of SPEC §2–§5,
// written independently of the streaming path (it shares only the decoded
// Event type and DayOf): it keeps every accepted event and, when asked,
// computes every profile and KPI from scratch, straight from the definitions,
// as of T = the largest ts of the accepted events. It is the oracle of the
// tests and of `tierstream verify`.
//
// Memory: every accepted event is kept (user ids interned, ~40 bytes each)
// plus every accepted event_id (duplicates are recognised with no horizon).
// Thread safety: confined (one thread).
#ifndef TIERSTREAM_VERIFY_BATCH_EVAL_H_
#define TIERSTREAM_VERIFY_BATCH_EVAL_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "ingest/event.h"

namespace tierstream::verify {

struct Thresholds {  // SPEC §3 defaults
  int64_t high_value_spend_fen = 50000;
  int64_t high_value_repeat_orders = 3;
  int32_t new_days = 30;
  int64_t active_interactions_7d = 3;
};

// SPEC §3: one user's profile as of T. Money in fen.
struct Profile {
  std::string user_id;
  bool member = true;
  int64_t joined_at = 0;
  std::optional<int64_t> last_active;
  int64_t interactions_7d = 0, interactions_30d = 0, orders_total = 0, orders_30d = 0,
          repeat_orders = 0;
  int64_t spend_30d_fen = 0, spend_total_fen = 0, points = 0, referrals = 0;
  std::string tier;  // "left", "high_value", "new", "active", "dormant", "regular"
};

// SPEC §5: the KPIs as of T. Money in fen; aov_30d in yuan (as served).
struct Kpis {
  std::optional<int64_t> as_of;  // T; nullopt when no event was accepted
  int64_t users_total = 0, members = 0;
  std::map<std::string, int64_t> tiers;  // all six keys, zeros included
  int64_t mau = 0, dau = 0, new_members_30d = 0, orders_30d = 0, community_orders_30d = 0;
  int64_t gmv_30d_fen = 0, refunds_30d_fen = 0, net_gmv_30d_fen = 0;
  int64_t buyers_total = 0, repeat_buyers_total = 0;
  int64_t referred_joins_30d = 0, referred_joins_prev_30d = 0;
  double monthly_active_rate = 0, community_order_share = 0, aov_30d = 0, repurchase_rate = 0;
  std::optional<double> referral_growth;  // nullopt when referred_joins_prev_30d == 0
  int64_t events_accepted = 0, events_duplicate = 0, events_rejected = 0;
};

class BatchEvaluator {
 public:
  BatchEvaluator(int64_t utc_offset_ms, Thresholds thresholds);

  // Adds one decoded, valid event (its strings are copied). An event whose
  // event_id was already accepted is counted as a duplicate and dropped; all
  // ids are remembered. Internal kReferralCredit events are ignored.
  void Add(const ingest::Event& e);
  // Counts `n` rejected lines (SPEC §5 events_rejected); changes nothing else.
  void AddRejected(int64_t n);

  // Every user with a profile (own events, or named as referrer by a
  // non-self join), keyed by user_id, as of T. Empty when no event was
  // accepted.
  std::map<std::string, Profile> Profiles() const;
  Kpis ComputeKpis() const;

 private:
  static constexpr int32_t kNoUser = -1;
  struct Stored {
    int64_t ts = 0;
    int64_t fen = 0;
    int32_t user = kNoUser;
    int32_t referrer = kNoUser;  // joins only; kNoUser when absent or self
    ingest::EventType type = ingest::EventType::kMessage;
    bool community = false;
  };

  int32_t Intern(std::string_view user_id);
  int32_t Day(int64_t ts) const;

  int64_t offset_ms_;
  Thresholds thresholds_;
  std::unordered_set<std::string> seen_ids_;
  std::unordered_map<std::string, int32_t> user_index_;
  std::vector<std::string> user_names_;  // index -> user_id
  std::vector<Stored> events_;           // accepted events, in arrival order
  std::optional<int64_t> max_ts_;        // T
  int64_t duplicates_ = 0, rejected_ = 0;
};

}  // namespace tierstream::verify

#endif  // TIERSTREAM_VERIFY_BATCH_EVAL_H_
