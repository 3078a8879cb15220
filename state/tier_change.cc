// The persisted encoding of a TierChange, and its JSON fields (see
// tier_change.h).
#include "state/tier_change.h"

#include "common/json_writer.h"
#include "common/varint.h"

namespace tierstream::state {

namespace {

constexpr uint8_t kTierChangeVersion = 1;

void PutBytes(std::string* out, std::string_view s) {
  PutVarint64(out, s.size());
  out->append(s);
}

bool GetBytes(std::string_view* in, std::string_view* s) {
  uint64_t n;
  if (!GetVarint64(in, &n) || n > in->size()) return false;
  *s = in->substr(0, n);
  in->remove_prefix(n);
  return true;
}

}  // namespace

void EncodeTierChange(const TierChange& c, std::string* out) {
  out->push_back(static_cast<char>(kTierChangeVersion));
  PutVarint64(out, c.shard_seq);
  PutBytes(out, c.user_id);
  PutVarint64(out, c.seq);
  out->push_back(static_cast<char>(c.from));
  out->push_back(static_cast<char>(c.to));
  PutVarintSigned(out, c.at_ms);
  out->push_back(static_cast<char>(c.cause));
  PutBytes(out, c.cause_ref);
  PutVarintSigned(out, c.written_ms);
}

Status DecodeTierChange(std::string_view in, TierChange* c) {
  auto bad = [](const char* what) {
    return Status::Corruption(std::string("tier change: ") + what);
  };
  if (in.empty() || static_cast<uint8_t>(in[0]) != kTierChangeVersion) {
    return bad("unknown version");
  }
  in.remove_prefix(1);
  std::string_view user, ref;
  uint64_t seq;
  if (!GetVarint64(&in, &c->shard_seq) || !GetBytes(&in, &user) || !GetVarint64(&in, &seq) ||
      seq > UINT32_MAX || in.size() < 2) {
    return bad("truncated");
  }
  const auto from = static_cast<uint8_t>(in[0]);
  const auto to = static_cast<uint8_t>(in[1]);
  in.remove_prefix(2);
  if (from > static_cast<uint8_t>(Tier::kNone) || to >= static_cast<uint8_t>(Tier::kNone)) {
    return bad("tier");
  }
  if (!GetVarintSigned(&in, &c->at_ms) || in.empty()) return bad("truncated");
  const auto cause = static_cast<uint8_t>(in[0]);
  in.remove_prefix(1);
  if (cause < 1 || cause > 3) return bad("cause");
  if (!GetBytes(&in, &ref) || !GetVarintSigned(&in, &c->written_ms) || !in.empty()) {
    return bad("cause reference");
  }
  c->user_id.assign(user);
  c->seq = static_cast<uint32_t>(seq);
  c->from = static_cast<Tier>(from);
  c->to = static_cast<Tier>(to);
  c->cause = static_cast<ChangeCause>(cause);
  c->cause_ref.assign(ref);
  return Status::Ok();
}

void WriteTierChangeFields(JsonWriter& jw, const TierChange& c) {
  jw.Key("user_id").String(c.user_id).Key("seq").Int(c.seq).Key("from");
  if (c.from == Tier::kNone) {
    jw.Null();
  } else {
    jw.String(TierName(c.from));
  }
  jw.Key("to").String(TierName(c.to)).Key("at").Int(c.at_ms).Key("cause").BeginObject();
  switch (c.cause) {
    case ChangeCause::kEvent:
      jw.Key("event_id").String(c.cause_ref);
      break;
    case ChangeCause::kTime:
      jw.Key("time").Bool(true);
      break;
    case ChangeCause::kRules:
      jw.Key("rules").String(c.cause_ref);
      break;
  }
  jw.EndObject();
}

}  // namespace tierstream::state
