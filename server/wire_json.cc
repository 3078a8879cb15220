// Renders the pipeline's typed answers as the API's JSON, byte for byte what
// the conformance fixtures and clients expect (field order included).
#include "server/wire_json.h"

#include "common/json_writer.h"

namespace tierstream::server {

namespace {

double Ratio(double num, int64_t den) { return den == 0 ? 0.0 : num / static_cast<double>(den); }

void IntOrNull(JsonWriter& w, int64_t v, int64_t null_value) {
  if (v == null_value) {
    w.Null();
  } else {
    w.Int(v);
  }
}

int64_t Signed(uint64_t v) { return static_cast<int64_t>(v); }

}  // namespace

std::string ErrorBody(std::string_view message) {
  std::string out;
  JsonWriter(&out).BeginObject().Key("error").String(message).EndObject();
  return out;
}

std::string RenderProfileJson(const state::Profile& p, int64_t as_of) {
  std::string out;
  out.reserve(384);
  JsonWriter w(&out);
  w.BeginObject();
  w.Key("user_id").String(p.user_id);
  w.Key("as_of").Int(as_of);
  w.Key("member").Bool(p.member);
  w.Key("joined_at").Int(p.joined_at);
  w.Key("last_active");
  IntOrNull(w, p.last_active, kNoTs);
  w.Key("interactions_7d").Int(p.interactions_7d);
  w.Key("interactions_30d").Int(p.interactions_30d);
  w.Key("orders_total").Int(p.orders_total);
  w.Key("orders_30d").Int(p.orders_30d);
  w.Key("repeat_orders").Int(p.repeat_orders);
  w.Key("spend_30d").Yuan(p.spend_30d_fen);
  w.Key("spend_total").Yuan(p.spend_total_fen);
  w.Key("points").Int(p.points);
  w.Key("referrals").Int(p.referrals);
  w.Key("tier").String(state::TierName(p.tier));
  w.EndObject();
  return out;
}

namespace {

void QuantitiesObject(JsonWriter& w, const std::vector<state::Quantity>& qs) {
  w.BeginObject();
  for (const state::Quantity& q : qs) {
    w.Key(q.name);
    switch (q.unit) {
      case state::Unit::kFen:
        w.Yuan(q.value);
        break;
      case state::Unit::kBool:
        w.Bool(q.value != 0);
        break;
      case state::Unit::kCount:
      case state::Unit::kTs:
        w.Int(q.value);
        break;
    }
  }
  w.EndObject();
}

}  // namespace

std::string RenderExplainJson(const pipeline::ExplainReport& r) {
  const state::Explanation& x = r.explanation;
  std::string out;
  out.reserve(1024);
  JsonWriter w(&out);
  w.BeginObject();
  w.Key("user_id").String(r.user_id);
  w.Key("as_of").Int(r.as_of);
  w.Key("tier").String(state::TierName(x.tier));
  w.Key("rules").BeginArray();
  for (const state::RuleCheck& rule : x.rules) {
    w.BeginObject();
    w.Key("tier").String(state::TierName(rule.tier));
    w.Key("holds").Bool(rule.holds);
    w.Key("values");
    QuantitiesObject(w, rule.values);
    w.Key("thresholds");
    QuantitiesObject(w, rule.thresholds);
    w.EndObject();
  }
  w.EndArray();
  w.Key("next_change");
  if (x.next_change) {
    w.BeginObject();
    w.Key("at").Int(x.next_change->at);
    w.Key("tier").String(state::TierName(x.next_change->tier));
    w.Key("because").String(x.next_change->because);
    w.EndObject();
  } else {
    w.Null();
  }
  w.Key("to_reach").BeginObject();
  for (const state::Reach& reach : x.to_reach) {
    w.Key(state::TierName(reach.tier)).BeginObject();
    w.Key("join").Bool(reach.join);
    if (reach.spend_30d_fen) w.Key("spend_30d").Yuan(*reach.spend_30d_fen);
    if (reach.orders) w.Key("orders").Int(*reach.orders);
    if (reach.interactions_7d) w.Key("interactions_7d").Int(*reach.interactions_7d);
    if (reach.by) {
      w.Key("by");
      IntOrNull(w, *reach.by, kNoTs);
    }
    w.EndObject();
  }
  w.EndObject();
  w.EndObject();
  return out;
}

std::string RenderKpisJson(const state::KpiPartial& k, int64_t as_of,
                           const std::pair<uint32_t, uint32_t>* partitions) {
  std::string out;
  out.reserve(1024);
  JsonWriter w(&out);
  w.BeginObject();
  w.Key("as_of");
  IntOrNull(w, as_of, kNoTs);
  w.Key("users_total").Int(k.users_total);
  w.Key("members").Int(k.members);
  w.Key("tiers").BeginObject();
  for (int i = 0; i < state::kTierCount; ++i) {
    w.Key(state::TierName(static_cast<state::Tier>(i))).Int(k.tiers[static_cast<size_t>(i)]);
  }
  w.EndObject();
  w.Key("mau").Int(k.mau);
  w.Key("dau").Int(k.dau);
  w.Key("monthly_active_rate").Double(Ratio(static_cast<double>(k.mau), k.members));
  w.Key("new_members_30d").Int(k.new_members_30d);
  w.Key("orders_30d").Int(k.orders_30d);
  w.Key("community_orders_30d").Int(k.community_orders_30d);
  w.Key("community_order_share")
      .Double(Ratio(static_cast<double>(k.community_orders_30d), k.orders_30d));
  w.Key("gmv_30d").Yuan(k.gmv_30d_fen);
  w.Key("refunds_30d").Yuan(k.refunds_30d_fen);
  w.Key("net_gmv_30d").Yuan(k.gmv_30d_fen - k.refunds_30d_fen);
  w.Key("aov_30d").Double(Ratio(static_cast<double>(k.gmv_30d_fen) / 100.0, k.orders_30d));
  w.Key("buyers_total").Int(k.buyers_total);
  w.Key("repeat_buyers_total").Int(k.repeat_buyers_total);
  w.Key("repurchase_rate")
      .Double(Ratio(static_cast<double>(k.repeat_buyers_total), k.buyers_total));
  w.Key("referred_joins_30d").Int(k.referred_joins_30d);
  w.Key("referred_joins_prev_30d").Int(k.referred_joins_prev_30d);
  w.Key("referral_growth");
  if (k.referred_joins_prev_30d == 0) {
    w.Null();
  } else {
    w.Double(static_cast<double>(k.referred_joins_30d - k.referred_joins_prev_30d) /
             static_cast<double>(k.referred_joins_prev_30d));
  }
  w.Key("events_accepted").Int(k.events_accepted);
  w.Key("events_duplicate").Int(k.events_duplicate);
  w.Key("events_rejected").Int(k.events_rejected);
  if (partitions != nullptr) {
    w.Key("partitions").BeginObject();
    w.Key("reporting").Int(partitions->first).Key("total").Int(partitions->second);
    w.EndObject();
  }
  w.EndObject();
  return out;
}

std::string RenderTierPageJson(state::Tier tier, const pipeline::TierPage& page) {
  std::string body;
  JsonWriter jw(&body);
  jw.BeginObject().Key("tier").String(state::TierName(tier));
  jw.Key("users").BeginArray();
  for (const auto& id : page.user_ids) jw.String(id);
  jw.EndArray().Key("next_after");
  if (page.more) {
    jw.String(page.user_ids.back());
  } else {
    jw.Null();
  }
  jw.EndObject();
  return body;
}

namespace {
void WriteChange(JsonWriter& jw, uint64_t cursor, const state::TierChange& c) {
  jw.BeginObject().Key("cursor").String(std::to_string(cursor));
  state::WriteTierChangeFields(jw, c);
  jw.EndObject();
}
}  // namespace

std::string RenderChangeJson(uint64_t cursor, const state::TierChange& c) {
  std::string body;
  JsonWriter jw(&body);
  WriteChange(jw, cursor, c);
  return body;
}

std::string RenderChangesJson(const pipeline::ChangePage& page) {
  std::string body;
  JsonWriter jw(&body);
  jw.BeginObject().Key("changes").BeginArray();
  for (const auto& [cursor, change] : page.changes) WriteChange(jw, cursor, change);
  jw.EndArray().Key("next").String(std::to_string(page.next)).EndObject();
  return body;
}

std::string RenderChangeBatchJson(std::span<const std::pair<uint64_t, state::TierChange>> changes) {
  std::string body;
  JsonWriter jw(&body);
  jw.BeginObject().Key("changes").BeginArray();
  for (const auto& [cursor, change] : changes) WriteChange(jw, cursor, change);
  jw.EndArray().EndObject();
  return body;
}

std::string RenderChangesGoneJson(uint64_t after, uint64_t oldest) {
  std::string body;
  JsonWriter jw(&body);
  jw.BeginObject()
      .Key("error")
      .String("cursor " + std::to_string(after) +
              " is older than the change feed's retention; resume after \"oldest\"")
      .Key("oldest")
      .String(std::to_string(oldest))
      .EndObject();
  return body;
}

void AppendTierPageNdjson(const pipeline::TierPage& page, bool profiles, std::string* out) {
  for (size_t i = 0; i < page.user_ids.size(); ++i) {
    if (profiles) {
      *out += RenderProfileJson(page.profiles[i]);
    } else {
      JsonWriter(out).BeginObject().Key("user_id").String(page.user_ids[i]).EndObject();
    }
    *out += '\n';
  }
}

std::string RenderHealthJson(std::string_view status, const std::vector<std::string>& reasons,
                             int64_t as_of, const pipeline::PipelineStats* stats,
                             const std::vector<WebhookStats>* webhooks,
                             const pipeline::InputStats* input) {
  std::string body;
  JsonWriter w(&body);
  w.BeginObject().Key("status").String(status);
  if (!reasons.empty()) {
    w.Key("reasons").BeginArray();
    for (const auto& r : reasons) w.String(r);
    w.EndArray();
  }
  if (stats != nullptr) {
    const pipeline::PipelineStats& s = *stats;
    w.Key("as_of");
    IntOrNull(w, as_of, kNoTs);
    w.Key("shards").Int(Signed(s.shards));
    w.Key("resident_users").Int(Signed(s.resident_users));
    w.Key("max_resident_users").Int(Signed(s.max_resident_users));
    w.Key("reloads").Int(Signed(s.reloads));
    w.Key("warm_users").Int(Signed(s.warm_users));
    w.Key("warm_bytes").Int(Signed(s.warm_bytes));
    w.Key("warm_reloads").Int(Signed(s.warm_reloads));
    w.Key("dirty_users").Int(Signed(s.dirty_users));
    w.Key("remembered_event_ids").Int(Signed(s.remembered_ids));
    w.Key("spilled_event_ids").Int(Signed(s.spilled_ids));
    w.Key("event_id_runs").Int(Signed(s.id_runs));
    w.Key("events_beyond_horizon").Int(Signed(s.events_beyond_horizon));
    w.Key("events_in_flight").Int(s.events_in_flight);
  }
  if (webhooks != nullptr && !webhooks->empty()) {
    w.Key("webhooks").BeginArray();
    for (const WebhookStats& h : *webhooks) {
      w.BeginObject().Key("id").String(h.id).Key("url").String(h.url);
      w.Key("position").String(std::to_string(h.position));
      w.Key("lag_changes").Int(Signed(h.lag_changes));
      w.Key("lag_seconds").Double(h.lag_seconds);
      w.Key("consecutive_failures").Int(Signed(h.consecutive_failures));
      w.Key("failures_total").Int(Signed(h.failures_total));
      w.Key("delivered_batches").Int(Signed(h.delivered_batches));
      w.Key("delivered_changes").Int(Signed(h.delivered_changes));
      w.Key("skipped_changes").Int(Signed(h.skipped_changes));
      w.Key("last_error");
      if (h.last_error.empty()) {
        w.Null();
      } else {
        w.String(h.last_error);
      }
      w.EndObject();
    }
    w.EndArray();
  }
  if (input != nullptr) {
    const pipeline::InputStats& k = *input;
    w.Key("kafka").BeginObject();
    w.Key("topic").String(k.topic).Key("group").String(k.group);
    w.Key("partitions").BeginArray();
    for (const pipeline::InputPartitionStats& p : k.assigned) {
      w.BeginObject().Key("partition").Int(p.partition);
      w.Key("offset").Int(Signed(p.position));
      w.Key("end");
      IntOrNull(w, p.end, -1);
      w.Key("lag");
      IntOrNull(w, p.lag, -1);
      w.EndObject();
    }
    w.EndArray();
    w.Key("records").Int(Signed(k.records));
    w.Key("forwards_received").Int(Signed(k.forwarded_in));
    w.Key("forwarded_events").Int(Signed(k.forwarded_out));
    w.Key("rewinds").Int(Signed(k.rewinds));
    w.Key("rebalances").Int(Signed(k.rebalances));
    w.Key("restores").Int(Signed(k.restores));
    w.Key("restored_bytes").Int(Signed(k.restored_bytes));
    w.Key("changes_published").Int(Signed(k.changes_published));
    w.Key("changes_fenced").Int(Signed(k.changes_fenced));
    w.Key("restore_seconds").Double(k.restore_seconds);
    w.EndObject();
  }
  w.EndObject();
  return body;
}

}  // namespace tierstream::server
