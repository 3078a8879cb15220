// Reads the config file (JSON) into a Config, naming the field that is wrong.
#include "state/config.h"

#include <simdjson.h>

#include <fstream>
#include <sstream>

#include "common/money.h"
#include "common/time.h"

namespace tierstream::state {

Result<Config> ParseConfig(std::string_view json) {
  Config config;
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (auto err = parser.parse(json.data(), json.size()).get(root)) {
    return Status::InvalidArgument(std::string("config: invalid JSON: ") +
                                   simdjson::error_message(err));
  }
  simdjson::dom::object obj;
  if (root.get(obj)) return Status::InvalidArgument("config: must be a JSON object");
  for (auto [key, value] : obj) {
    if (key == "tz") {
      std::string_view tz;
      std::optional<int64_t> offset;
      if (value.get(tz) || !(offset = ParseUtcOffset(tz))) {
        return Status::InvalidArgument("config: tz: must be an offset like \"+08:00\"");
      }
      config.utc_offset_ms = *offset;
    } else if (key == "dedup_horizon_days") {
      int64_t days;
      if (value.get(days) || days < 7 || days > 3650) {
        return Status::InvalidArgument("config: dedup_horizon_days: must be an integer in 7..3650");
      }
      config.dedup_horizon_days = static_cast<int32_t>(days);
    } else if (key == "max_future_ms") {
      int64_t ms;
      if (value.get(ms) || ms < 0 || ms > 100 * 365 * kMsPerDay) {
        return Status::InvalidArgument(
            "config: max_future_ms: must be an integer number of ms in 0..100 years (0: off)");
      }
      config.max_future_ms = ms;
    } else if (key == "changes") {
      simdjson::dom::object changes;
      if (value.get(changes)) return Status::InvalidArgument("config: changes: must be an object");
      for (auto [ckey, cvalue] : changes) {
        const std::string field = "config: changes." + std::string(ckey);
        if (ckey == "enabled") {
          bool on;
          if (cvalue.get(on)) return Status::InvalidArgument(field + ": must be true or false");
          config.changes.enabled = on;
          continue;
        }
        int64_t v;
        if (cvalue.get(v) || v < 0 || v > 1'000'000) {
          return Status::InvalidArgument(field + ": must be an integer in 0..1000000");
        }
        if (ckey == "retain_days") {
          config.changes.retain_days = static_cast<int32_t>(v);
        } else if (ckey == "retain_hours") {
          config.changes.retain_wall_ms = v * 3'600'000;
        } else if (ckey == "max_mb") {
          if (v < 1) return Status::InvalidArgument(field + ": must be at least 1");
          config.changes.max_bytes = static_cast<uint64_t>(v) << 20;
        } else {
          return Status::InvalidArgument("config: changes: unknown key '" + std::string(ckey) +
                                         "'");
        }
      }
    } else if (key == "tiers") {
      simdjson::dom::object tiers;
      if (value.get(tiers)) return Status::InvalidArgument("config: tiers: must be an object");
      for (auto [tkey, tvalue] : tiers) {
        if (tkey == "high_value_spend") {
          int64_t fen;
          std::string text = simdjson::minify(tvalue);
          if (!tvalue.is_number() || DecimalToFen(text, 1'000'000'000, &fen) != DecimalError::kOk) {
            return Status::InvalidArgument(
                "config: tiers.high_value_spend: must be a yuan amount in 0..1e9");
          }
          config.rules.high_value_spend_fen = fen;
          continue;
        }
        int64_t v;
        if (tvalue.get(v) || v < 0 || v > 1'000'000) {
          return Status::InvalidArgument("config: tiers." + std::string(tkey) +
                                         ": must be an integer in 0..1000000");
        }
        if (tkey == "high_value_repeat_orders") {
          config.rules.high_value_repeat_orders = v;
        } else if (tkey == "new_days") {
          if (v < 1 || v > 3650) {
            return Status::InvalidArgument("config: tiers.new_days: must be in 1..3650");
          }
          config.rules.new_days = static_cast<int32_t>(v);
        } else if (tkey == "active_interactions_7d") {
          config.rules.active_interactions_7d = v;
        } else {
          return Status::InvalidArgument("config: tiers: unknown key '" + std::string(tkey) + "'");
        }
      }
    } else {
      return Status::InvalidArgument("config: unknown key '" + std::string(key) + "'");
    }
  }
  return config;
}

Result<Config> LoadConfigFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::IoError("config: cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseConfig(ss.str());
}

}  // namespace tierstream::state
