// Pins a data dir to its shard count, time zone and tier rules (store meta).
#include "pipeline/data_dir.h"

#include <algorithm>
#include <charconv>
#include <thread>

#include "common/hash.h"
#include "common/time.h"

namespace tierstream::pipeline {

namespace {

std::string RulesKey(const state::TierRules& r) {
  return std::to_string(r.high_value_spend_fen) + "/" + std::to_string(r.high_value_repeat_orders) +
         "/" + std::to_string(r.new_days) + "/" + std::to_string(r.active_interactions_7d);
}

}  // namespace

Result<DataDirPins> PinDataDir(state::Store* store, const std::string& data_dir,
                               uint32_t requested_shards, Placement placement,
                               const state::Config& config) {
  DataDirPins pins;
  std::string stored;
  bool found = false;
  Status s = store->GetMeta("shards", &stored, &found);
  if (!s.ok()) return s;
  const bool new_dir = !found;
  // Its users' shards depend on the placement, as on the count.
  std::string stored_placement;
  bool placement_found = false;
  s = store->GetMeta("placement", &stored_placement, &placement_found);
  if (!s.ok()) return s;
  const std::string want = placement == Placement::kKafka ? "kafka" : "hash64";
  const std::string have_placement = placement_found ? stored_placement : "hash64";
  if (!new_dir && have_placement != want) {
    return Status::FailedPrecondition(
        "data dir " + data_dir +
        (have_placement == "kafka" ? " was created in Kafka mode; start it with --kafka"
                                   : " was created for the HTTP/TCP journal; start it without "
                                     "--kafka") +
        ", or use a new data dir");
  }
  if (new_dir || !placement_found) {
    s = store->PutMeta("placement", want, true /*sync*/);
    if (!s.ok()) return s;
  }
  uint32_t shards = requested_shards;
  if (shards > 256) return Status::InvalidArgument("--shards must be in 1..256");
  if (found) {
    uint32_t have = 0;
    auto r = std::from_chars(stored.data(), stored.data() + stored.size(), have);
    if (r.ec != std::errc() || have == 0 || have > 256) {
      return Status::Corruption("data dir " + data_dir + ": bad shard count");
    }
    if (shards != 0 && shards != have) {
      return Status::FailedPrecondition("data dir " + data_dir + " holds " + std::to_string(have) +
                                        " shards; start with --shards " + std::to_string(have) +
                                        " or use a new data dir");
    }
    shards = have;
  } else {
    if (shards == 0) shards = std::clamp(std::thread::hardware_concurrency(), 1u, 256u);
    s = store->PutMeta("shards", std::to_string(shards), true /*sync*/);
    if (!s.ok()) return s;
  }
  pins.shards = shards;
  const std::string tz = FormatUtcOffset(config.utc_offset_ms);
  s = store->GetMeta("tz", &stored, &found);
  if (!s.ok()) return s;
  if (found && stored != tz) {
    return Status::FailedPrecondition("data dir " + data_dir + " counts days in " + stored +
                                      "; start with --tz " + stored + " or use a new data dir");
  }
  if (!found) {
    s = store->PutMeta("tz", tz, true /*sync*/);
    if (!s.ok()) return s;
  }
  s = store->GetMeta("rules", &stored, &found);
  if (!s.ok()) return s;
  pins.rules = RulesKey(config.rules);
  pins.rules_changed = found && stored != pins.rules;
  return pins;
}

Status RecordRules(state::Store* store, const DataDirPins& pins) {
  return store->PutMeta("rules", pins.rules, true /*sync*/);
}

std::string ShardMetaKey(uint32_t shard) { return "shard/" + std::to_string(shard); }
std::string UserIndexStampKey(uint32_t shard) { return "user_index/" + std::to_string(shard); }
std::string UserIndexStamp(std::string_view meta) { return std::to_string(Hash64(meta)); }

}  // namespace tierstream::pipeline
