// Keeps evicted users encoded in memory within a byte budget, oldest out first.
#include "state/warm_users.h"

#include <cstring>

namespace tierstream::state {

bool WarmUsers::Take(uint64_t hash, std::string_view user_id, std::string* encoded) {
  auto it = map_.find(hash);
  if (it == map_.end() || it->second.id() != user_id) return false;
  encoded->assign(it->second.encoded());
  Erase(it);
  return true;
}

bool WarmUsers::Peek(uint64_t hash, std::string_view* user_id, int32_t* due) const {
  auto it = map_.find(hash);
  if (it == map_.end()) return false;
  *user_id = it->second.id();
  *due = it->second.due;
  return true;
}

bool WarmUsers::Contains(uint64_t hash, std::string_view user_id) const {
  auto it = map_.find(hash);
  return it != map_.end() && it->second.id() == user_id;
}

void WarmUsers::Erase(absl::flat_hash_map<uint64_t, Record>::iterator it) {
  bytes_ -= it->second.size + kOverhead;
  map_.erase(it);  // its fifo entry goes stale
}

void WarmUsers::CompactFifo() {
  std::deque<std::pair<uint64_t, uint32_t>> live;
  for (const auto& [h, seq] : fifo_) {
    auto it = map_.find(h);
    if (it != map_.end() && it->second.seq == seq) live.emplace_back(h, seq);
  }
  fifo_.swap(live);
}

}  // namespace tierstream::state
