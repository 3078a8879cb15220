// BatchEvaluator: a deliberately simple batch implementation of SPEC §2–§5,
// written independently of the streaming path (it shares only the decoded
// Event type): it keeps every accepted event and computes each profile and
// KPI from scratch, straight from the definitions. It is the oracle of the
// tests and of `verify`. Thread safety: confined.
#ifndef TIERSTREAM_VERIFY_BATCH_EVAL_H_
#define TIERSTREAM_VERIFY_BATCH_EVAL_H_

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "ingest/event.h"

namespace tierstream::verify {

struct Thresholds {  // SPEC §3 defaults
  int64_t high_value_spend_fen = 50000;
  int64_t high_value_repeat_orders = 3;
  int32_t new_days = 30;
  int64_t active_interactions_7d = 3;
};

struct Profile {
  std::string user_id;
  bool member = true;
  int64_t joined_at = 0;
  std::optional<int64_t> last_active;
  int64_t interactions_7d = 0, interactions_30d = 0, orders_total = 0, orders_30d = 0,
          repeat_orders = 0;
  int64_t spend_30d_fen = 0, spend_total_fen = 0, points = 0, referrals = 0;
  std::string tier;
};

struct Kpis {
  std::optional<int64_t> as_of;
  int64_t users_total = 0, members = 0;
  std::map<std::string, int64_t> tiers;
  int64_t mau = 0, dau = 0, new_members_30d = 0, orders_30d = 0, community_orders_30d = 0;
  int64_t gmv_30d_fen = 0, refunds_30d_fen = 0, net_gmv_30d_fen = 0;
  int64_t buyers_total = 0, repeat_buyers_total = 0;
  int64_t referred_joins_30d = 0, referred_joins_prev_30d = 0;
  double monthly_active_rate = 0, community_order_share = 0, aov_30d = 0, repurchase_rate = 0;
  std::optional<double> referral_growth;
  int64_t events_accepted = 0, events_duplicate = 0, events_rejected = 0;
};

class BatchEvaluator {
 public:
  BatchEvaluator(int64_t utc_offset_ms, Thresholds thresholds);

  // Adds one decoded, valid event; a repeated event_id is counted and dropped.
  void Add(const ingest::Event& e);
  void AddRejected(int64_t n) { rejected_ += n; }

  std::map<std::string, Profile> Profiles() const;
  Kpis ComputeKpis() const;

 private:
  struct Stored {
    std::string user_id, referrer_id;
    ingest::EventType type;
    int64_t ts, fen;
    bool community;
  };
  int64_t Day(int64_t ts) const;
  Profile Evaluate(const std::string& user, int64_t today) const;

  int64_t offset_;
  Thresholds thresholds_;
  std::set<std::string> ids_;
  std::vector<Stored> events_;
  std::map<std::string, std::vector<size_t>> own_;       // user -> her events
  std::map<std::string, std::vector<size_t>> referred_;  // referrer -> joins naming her
  int64_t duplicates_ = 0, rejected_ = 0;
};

}  // namespace tierstream::verify

#endif  // TIERSTREAM_VERIFY_BATCH_EVAL_H_
