// The JSON the HTTP API serves, rendered from the pipeline's typed answers:
// profiles, KPIs, tier pages (JSON and NDJSON), /healthz and error bodies.
// The only place these documents are written (SPEC §3, §5, §6): the
// pipeline and the state answer with values, the server renders them here.
// Boost-free, so that it can be tested and fuzzed without a socket.
//
// Thread safety: thread-safe (pure functions).
#ifndef TIERSTREAM_SERVER_WIRE_JSON_H_
#define TIERSTREAM_SERVER_WIRE_JSON_H_

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "pipeline/input_stats.h"
#include "pipeline/queries.h"
#include "server/webhook_stats.h"
#include "state/explain.h"
#include "state/kpis.h"
#include "state/profile.h"
#include "state/tier_change.h"
#include "state/user_state.h"

namespace tierstream::server {

// {"error":"<message>"}: the body of every error answer.
std::string ErrorBody(std::string_view message);

// GET /v1/users/{id}: the profile as of `as_of` (T).
std::string RenderProfileJson(const state::Profile& p, int64_t as_of);
inline std::string RenderProfileJson(const pipeline::ProfileReport& r) {
  return server::RenderProfileJson(r.profile, r.as_of);
}

// GET /v1/users/{id}/explain: {"user_id", "as_of", "tier", "rules": [{"tier",
// "holds", "values": {...}, "thresholds": {...}}...], "next_change": {"at",
// "tier", "because"} or null, "to_reach": {tier: {"join", and per tier
// "spend_30d", "orders", "interactions_7d", "by"}}}; money in yuan.
std::string RenderExplainJson(const pipeline::ExplainReport& r);

// GET /v1/kpis; `as_of` is T (kNoTs renders as null).
// `partitions`: the Kafka mode's {reporting, total} (null: none).
std::string RenderKpisJson(const state::KpiPartial& k, int64_t as_of,
                           const std::pair<uint32_t, uint32_t>* partitions = nullptr);
inline std::string RenderKpisJson(const pipeline::KpiReport& r) {
  const std::pair<uint32_t, uint32_t> partitions{r.partitions_reporting, r.partitions_total};
  return server::RenderKpisJson(r.kpis, r.as_of, r.partitioned ? &partitions : nullptr);
}

// GET /v1/tiers/{tier}/users: {"tier":...,"users":[...],"next_after":...},
// where next_after is null when no member follows the page.
std::string RenderTierPageJson(state::Tier tier, const pipeline::TierPage& page);

// The same page as NDJSON lines appended to `out`: each member's profile
// when `profiles` (the page was asked with them), else {"user_id":...}.
void AppendTierPageNdjson(const pipeline::TierPage& page, bool profiles, std::string* out);

// One change of the feed: {"cursor","user_id","seq","from","to","at","cause"}
// (from null for her first tier; cause {"event_id":...}, {"time":true} or
// {"rules":...}). Cursors render as decimal strings (opaque to clients).
std::string RenderChangeJson(uint64_t cursor, const state::TierChange& c);
// GET /v1/changes: {"changes":[...],"next":"<cursor>"}.
std::string RenderChangesJson(const pipeline::ChangePage& page);
// A webhook's batch: {"changes":[...]}, each change as RenderChangeJson.
std::string RenderChangeBatchJson(std::span<const std::pair<uint64_t, state::TierChange>> changes);
// 410 for a cursor past retention: {"error":...,"oldest":"<cursor>"}.
std::string RenderChangesGoneJson(uint64_t after, uint64_t oldest);

// GET /healthz: {"status":..., "reasons":[...] (when any), "as_of":...,
// and the pipeline's figures}. `stats` null: the pipeline is still
// recovering (status "starting"), and neither as_of nor figures are known.
// With `webhooks` (not null, not empty), "webhooks":[{"id","url","position"
// (a cursor, as a string),"lag_changes","lag_seconds","consecutive_failures",
// "failures_total","delivered_batches","delivered_changes",
// "skipped_changes","last_error" (null if none)}] after the figures.
std::string RenderHealthJson(std::string_view status, const std::vector<std::string>& reasons,
                             int64_t as_of, const pipeline::PipelineStats* stats,
                             const std::vector<WebhookStats>* webhooks = nullptr,
                             const pipeline::InputStats* input = nullptr);

}  // namespace tierstream::server

#endif  // TIERSTREAM_SERVER_WIRE_JSON_H_
