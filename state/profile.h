// Profile: a user's profile as of T (SPEC §3), computed from her state
// (server/wire_json renders it). Plain value; the functions are pure and
// thread-safe.
#ifndef TIERSTREAM_STATE_PROFILE_H_
#define TIERSTREAM_STATE_PROFILE_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "common/time.h"
#include "state/config.h"
#include "state/user_state.h"

namespace tierstream::state {

// A user's profile as of T (SPEC §3).
struct Profile {
  std::string user_id;
  bool member = true;
  int64_t joined_at = 0;
  int64_t last_active = kNoTs;  // kNoTs renders as null
  int64_t interactions_7d = 0, interactions_30d = 0, orders_total = 0, orders_30d = 0;
  int64_t repeat_orders = 0, spend_30d_fen = 0, spend_total_fen = 0, points = 0, referrals = 0;
  Tier tier = Tier::kNone;
};
// The profile of the user `user_id` whose state is `s`, as of day `today`
// under `config`: what GetProfile answers for her, also for a state read
// straight from the store.
Profile MakeProfile(std::string_view user_id, const UserState& s, int32_t today,
                    const Config& config);

}  // namespace tierstream::state

#endif  // TIERSTREAM_STATE_PROFILE_H_
