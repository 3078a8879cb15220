// Reads the config file (JSON) into a Config, naming the field that is wrong.
#include "state/config.h"

#include <simdjson.h>

#include <fstream>
#include <optional>
#include <sstream>
#include <string>

#include "common/host_port.h"
#include "common/money.h"
#include "common/time.h"
#include "state/user_state.h"

namespace tierstream::state {

static_assert(WebhookConfig::kAnyTo == (1u << kTierCount) - 1);
static_assert(WebhookConfig::kAnyFrom == (1u << (static_cast<int>(Tier::kNone) + 1)) - 1);

namespace {

// ["dormant", "active"] -> a bit per tier; in `from`, "null" (or null) for
// a first tier, as GET /v1/changes' to= and from= take them.
Status ParseTierList(simdjson::dom::element value, bool allow_null, const std::string& field,
                     uint32_t* mask) {
  const std::string tiers = "left, high_value, new, active, dormant, regular";
  const Status bad =
      Status::InvalidArgument(field + ": must be a non-empty array of tiers among " + tiers +
                              (allow_null ? " and null (a first tier)" : ""));
  simdjson::dom::array list;
  if (value.get(list) || list.size() == 0) return bad;
  *mask = 0;
  for (simdjson::dom::element e : list) {
    std::string_view name;
    if (allow_null && (e.is_null() || (!e.get(name) && name == "null"))) {
      *mask |= 1u << static_cast<int>(Tier::kNone);
      continue;
    }
    std::optional<Tier> t;
    if (e.get(name) || !(t = ParseTier(name))) return bad;
    *mask |= 1u << static_cast<int>(*t);
  }
  return Status::Ok();
}

Status ParseWebhook(simdjson::dom::element value, const std::string& field, WebhookConfig* w) {
  simdjson::dom::object obj;
  if (value.get(obj)) return Status::InvalidArgument(field + ": must be an object");
  bool has_url = false, has_secret = false;
  for (auto [key, v] : obj) {
    const std::string name = field + "." + std::string(key);
    if (key == "url") {
      std::string_view url;
      if (v.get(url)) return Status::InvalidArgument(name + ": must be a string");
      HttpUrl parsed;
      std::string why;
      if (!ParseHttpUrl(url, &parsed, &why)) return Status::InvalidArgument(name + ": " + why);
      w->url = std::string(url);
      w->host = parsed.host;
      w->port = parsed.port;
      w->target = parsed.target;
      has_url = true;
    } else if (key == "to") {
      RETURN_IF_ERROR(ParseTierList(v, false, name, &w->to));
    } else if (key == "from") {
      RETURN_IF_ERROR(ParseTierList(v, true, name, &w->from));
    } else if (key == "secret_file") {
      std::string_view path;
      if (v.get(path) || path.empty()) {
        return Status::InvalidArgument(name + ": must be the path of a file holding the secret");
      }
      w->secret_file = std::string(path);
      has_secret = true;
    } else if (key == "max_batch") {
      int64_t n;
      if (v.get(n) || n < 1 || n > 1000) {
        return Status::InvalidArgument(name + ": must be an integer in 1..1000");
      }
      w->max_batch = static_cast<uint32_t>(n);
    } else if (key == "max_delay_ms") {
      int64_t ms;
      if (v.get(ms) || ms < 0 || ms > 3'600'000) {
        return Status::InvalidArgument(name + ": must be an integer number of ms in 0..3600000");
      }
      w->max_delay_ms = ms;
    } else if (key == "timeout_ms") {
      int64_t ms;
      if (v.get(ms) || ms < 1 || ms > 3'600'000) {
        return Status::InvalidArgument(name + ": must be an integer number of ms in 1..3600000");
      }
      w->timeout_ms = ms;
    } else {
      return Status::InvalidArgument(field + ": unknown key '" + std::string(key) + "'");
    }
  }
  if (!has_url) return Status::InvalidArgument(field + ".url: missing");
  if (!has_secret) {
    return Status::InvalidArgument(field +
                                   ".secret_file: missing (every webhook's requests are signed)");
  }
  return Status::Ok();
}

}  // namespace

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
    } else if (key == "webhooks") {
      simdjson::dom::array hooks;
      if (value.get(hooks)) {
        return Status::InvalidArgument("config: webhooks: must be an array of objects");
      }
      for (simdjson::dom::element hook : hooks) {
        const std::string field =
            "config: webhooks[" + std::to_string(config.webhooks.size()) + "]";
        RETURN_IF_ERROR(ParseWebhook(hook, field, &config.webhooks.emplace_back()));
        for (size_t i = 0; i + 1 < config.webhooks.size(); ++i) {
          const WebhookConfig& a = config.webhooks[i];
          const WebhookConfig& b = config.webhooks.back();
          if (a.url == b.url && a.to == b.to && a.from == b.from) {
            return Status::InvalidArgument(field + ": the same url and filters as webhooks[" +
                                           std::to_string(i) + "]");
          }
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
  if (!config.webhooks.empty() && !config.changes.enabled) {
    return Status::InvalidArgument(
        "config: webhooks: they deliver the change feed, which changes.enabled turns off");
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
