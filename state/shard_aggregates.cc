// A shard's KPI aggregates: day histograms, the KPI sums over them, and the
// shard meta codec that persists them.
#include "state/shard_aggregates.h"

#include <algorithm>

#include "common/varint.h"

namespace tierstream::state {

namespace {
constexpr uint8_t kMetaVersion = 4;
}  // namespace

DayHist::DayHist() : cells_(static_cast<size_t>(kLastCellDay - kFirstCellDay + 1), 0) {}

int64_t DayHist::Sum(int32_t from, int32_t to) const {
  from = std::max(from, kFirstCellDay);
  to = std::min(to, kLastCellDay);
  int64_t sum = 0;
  for (int32_t d = from; d <= to; ++d) sum += cells_[static_cast<size_t>(d - kFirstCellDay)];
  return sum;
}

void DayHist::Encode(std::string* out) const {
  size_t nonzero = 0;
  for (int64_t v : cells_) nonzero += v != 0;
  PutVarint64(out, nonzero);
  int64_t prev = 0;
  for (size_t i = 0; i < cells_.size(); ++i) {
    if (cells_[i] == 0) continue;
    PutVarint64(out, static_cast<uint64_t>(static_cast<int64_t>(i) - prev));
    prev = static_cast<int64_t>(i);
    PutVarintSigned(out, cells_[i]);
  }
}

bool DayHist::Decode(std::string_view* in) {
  std::fill(cells_.begin(), cells_.end(), 0);
  uint64_t n;
  if (!GetVarint64(in, &n) || n > cells_.size()) return false;
  uint64_t index = 0;
  for (uint64_t k = 0; k < n; ++k) {
    uint64_t delta;
    int64_t v;
    if (!GetVarint64(in, &delta) || !GetVarintSigned(in, &v)) return false;
    index += delta;
    if (index >= cells_.size()) return false;
    cells_[index] = v;
  }
  return true;
}

KpiPartial ShardAggregates::Kpis(int32_t today) const {
  KpiPartial k;
  k.users_total = users;
  k.members = members;
  k.tiers = tiers;
  k.buyers_total = buyers;
  k.repeat_buyers_total = repeat_buyers;
  k.events_accepted = accepted;
  k.events_duplicate = duplicates;
  k.events_rejected = rejected;
  if (today == kNoDay) return k;
  const int32_t from = today - kWindow30 + 1;
  k.mau = members_by_last_active.Sum(from, today);
  k.dau = members_by_last_active.Sum(today, today);
  k.new_members_30d = members_by_joined.Sum(from, today);
  k.orders_30d = orders.Sum(from, today);
  k.community_orders_30d = community_orders.Sum(from, today);
  k.gmv_30d_fen = gmv_fen.Sum(from, today);
  k.refunds_30d_fen = refunds_fen.Sum(from, today);
  k.referred_joins_30d = referred_joins.Sum(from, today);
  k.referred_joins_prev_30d = referred_joins.Sum(from - kWindow30, from - 1);
  return k;
}

void EncodeShardMeta(const ShardMetaHeader& header, const ShardAggregates& agg, std::string* out) {
  out->push_back(static_cast<char>(kMetaVersion));
  PutVarint64(out, header.shard_id);
  PutVarint64(out, header.log_seq);
  PutVarintSigned(out, header.max_ts);
  PutVarintSigned(out, header.swept_day);
  for (int64_t v :
       {agg.users, agg.members, agg.buyers, agg.repeat_buyers, agg.accepted, agg.duplicates,
        agg.rejected, agg.beyond_horizon, int64_t{header.forgotten_through_day}}) {
    PutVarintSigned(out, v);
  }
  for (int64_t v : agg.tiers) PutVarintSigned(out, v);
  for (const DayHist* h :
       {&agg.members_by_last_active, &agg.members_by_joined, &agg.orders, &agg.community_orders,
        &agg.gmv_fen, &agg.refunds_fen, &agg.referred_joins}) {
    h->Encode(out);
  }
  PutVarint64(out, header.change_seq);
  PutVarint64(out, header.input_position.events);
  PutVarint64(out, header.input_position.repartition);
  PutVarint64(out, header.owner_generation);
  PutVarint64(out, header.checkpoint_number);
  PutVarint64(out, header.forward_marks.size());
  for (uint64_t m : header.forward_marks) PutVarint64(out, m);
}

Status DecodeShardMeta(std::string_view in, ShardMetaHeader* header, ShardAggregates* agg) {
  auto bad = [](const char* what) {
    return Status::Corruption(std::string("shard meta: ") + what);
  };
  const uint8_t version = in.empty() ? 0 : static_cast<uint8_t>(in[0]);
  if (version < 1 || version > kMetaVersion) return bad("unknown version");
  in.remove_prefix(1);
  uint64_t shard;
  int64_t swept, v1_rejected = 0;
  if (!GetVarint64(&in, &shard) || shard != header->shard_id) return bad("shard id mismatch");
  if (!GetVarint64(&in, &header->log_seq) ||
      (version == 1 && !GetVarintSigned(&in, &v1_rejected)) ||
      !GetVarintSigned(&in, &header->max_ts) || !GetVarintSigned(&in, &swept)) {
    return bad("truncated header");
  }
  if ((swept != kNoDay && (swept < kFirstCellDay || swept > kLastCellDay)) ||
      (header->max_ts != kNoTs && !TsInRange(header->max_ts))) {
    return bad("watermark out of range");
  }
  header->swept_day = static_cast<int32_t>(swept);
  for (int64_t* v : {&agg->users, &agg->members, &agg->buyers, &agg->repeat_buyers, &agg->accepted,
                     &agg->duplicates}) {
    if (!GetVarintSigned(&in, v)) return bad("truncated counters");
  }
  if (version == 1) {
    agg->rejected = v1_rejected;
    agg->beyond_horizon = 0;
    header->forgotten_known = false;
  } else {
    int64_t forgotten;
    if (!GetVarintSigned(&in, &agg->rejected) || !GetVarintSigned(&in, &agg->beyond_horizon) ||
        !GetVarintSigned(&in, &forgotten)) {
      return bad("truncated counters");
    }
    if (forgotten != kNoDay && (forgotten < kFirstCellDay || forgotten > kLastCellDay)) {
      return bad("forgotten day out of range");
    }
    header->forgotten_through_day = static_cast<int32_t>(forgotten);
    header->forgotten_known = true;
  }
  for (int64_t& v : agg->tiers) {
    if (!GetVarintSigned(&in, &v)) return bad("truncated tiers");
  }
  for (DayHist* h :
       {&agg->members_by_last_active, &agg->members_by_joined, &agg->orders, &agg->community_orders,
        &agg->gmv_fen, &agg->refunds_fen, &agg->referred_joins}) {
    if (!h->Decode(&in)) return bad("histogram");
  }
  header->change_seq = 0;
  if (version >= 3 && !GetVarint64(&in, &header->change_seq)) return bad("change count");
  header->input_position = InputPosition{};
  header->owner_generation = header->checkpoint_number = 0;
  if (version >= 4 && (!GetVarint64(&in, &header->input_position.events) ||
                       !GetVarint64(&in, &header->input_position.repartition) ||
                       !GetVarint64(&in, &header->owner_generation) ||
                       !GetVarint64(&in, &header->checkpoint_number))) {
    return bad("input position");
  }
  header->forward_marks.clear();
  if (version >= 4) {
    uint64_t count = 0;
    if (!GetVarint64(&in, &count) || count > in.size()) return bad("forward marks");
    header->forward_marks.resize(count);
    for (uint64_t& m : header->forward_marks) {
      if (!GetVarint64(&in, &m)) return bad("forward marks");
    }
  }
  if (!in.empty()) return bad("trailing bytes");
  return Status::Ok();
}

}  // namespace tierstream::state
