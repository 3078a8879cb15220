// Encodes and decodes the journal's log blocks (see log_format.h).
#include "state/log_format.h"

#include "common/time.h"
#include "common/varint.h"

namespace tierstream::state {

using ingest::EventType;

namespace {

void PutString(std::string* out, std::string_view s) {
  out->push_back(static_cast<char>(s.size()));  // ids are at most 128 bytes
  out->append(s);
}

bool GetString(std::string_view* in, std::string_view* s) {
  if (in->empty()) return false;
  auto n = static_cast<uint8_t>(in->front());
  if (in->size() < 1u + n) return false;
  *s = in->substr(1, n);
  in->remove_prefix(1u + n);
  return true;
}

bool HasAmount(EventType t) { return t == EventType::kOrder || t == EventType::kRefund; }
bool HasReferrer(EventType t) { return t == EventType::kJoin || t == EventType::kReferralCredit; }

}  // namespace

namespace {
constexpr size_t kCountsBytes = 3 * 8;  // fixed width: filled in after the records
constexpr size_t kTBytes = 8;           // version 3: T, fixed width
// A record tag beyond every event type: a time change.
constexpr uint8_t kTimeChangeTag = 0x7F;

void PutFixed64(std::string* out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}
uint64_t GetFixed64(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= uint64_t{static_cast<unsigned char>(p[i])} << (8 * i);
  return v;
}
}  // namespace

void BeginLogBlock(std::string* out, int64_t t_ms, const InputPosition* position,
                   std::span<const ForwardMark> marks) {
  out->push_back(kLogBlockVersion);
  out->append(kCountsBytes, '\0');
  PutFixed64(out, static_cast<uint64_t>(t_ms));
  // Version 4: a flag, then the position's two offsets.
  out->push_back(position != nullptr ? 1 : 0);
  if (position != nullptr) {
    PutVarint64(out, position->events);
    PutVarint64(out, position->repartition);
    PutVarint64(out, marks.size());
    for (const ForwardMark& m : marks) {
      PutVarint64(out, m.source);
      PutVarint64(out, m.next);
    }
  }
}

void AppendTimeChangeRecord(std::string_view user_id, int32_t day, std::string* out) {
  out->push_back(static_cast<char>(kTimeChangeTag));
  PutVarintSigned(out, day);
  PutString(out, user_id);
}

void SetLogBlockCounts(const LogBlockCounts& counts, std::string* block) {
  char* p = block->data() + 1;
  for (uint64_t v : {counts.duplicates, counts.rejected, counts.beyond_horizon}) {
    for (int i = 0; i < 8; ++i) *p++ = static_cast<char>((v >> (8 * i)) & 0xFF);
  }
}

void AppendEventRecord(const ingest::Event& e, std::string* out) {
  out->push_back(static_cast<char>(static_cast<uint8_t>(e.type) | (e.community ? 0x80 : 0)));
  PutVarint64(out, static_cast<uint64_t>(e.ts_ms - kMinTsMs));
  if (HasAmount(e.type)) PutVarint64(out, static_cast<uint64_t>(e.amount_fen));
  PutString(out, e.event_id);
  PutString(out, e.user_id);
  if (HasReferrer(e.type)) PutString(out, e.referrer_id);
}

LogBlockReader::LogBlockReader(std::string_view block) : rest_(block) {
  const char version = rest_.empty() ? 0 : rest_.front();
  if (version == 1) {
    rest_.remove_prefix(1);
  } else if ((version == 2 && rest_.size() >= 1 + kCountsBytes) ||
             ((version == 3 || version == 4) && rest_.size() >= 1 + kCountsBytes + kTBytes)) {
    const char* p = rest_.data() + 1;
    for (uint64_t* v : {&counts_.duplicates, &counts_.rejected, &counts_.beyond_horizon}) {
      *v = GetFixed64(p);
      p += 8;
    }
    rest_.remove_prefix(1 + kCountsBytes);
    if (version >= 3) {
      t_ms_ = static_cast<int64_t>(GetFixed64(p));
      rest_.remove_prefix(kTBytes);
      if (t_ms_ != INT64_MIN && !TsInRange(t_ms_)) ok_ = false;
    }
    if (version == 4) {
      const char flag = rest_.empty() ? char{2} : rest_.front();
      if (!rest_.empty()) rest_.remove_prefix(1);
      if (flag == 1) {
        uint64_t count = 0;
        has_position_ = GetVarint64(&rest_, &position_.events) &&
                        GetVarint64(&rest_, &position_.repartition) &&
                        GetVarint64(&rest_, &count) && count <= rest_.size();
        for (uint64_t i = 0; has_position_ && i < count; ++i) {
          uint64_t source = 0, next = 0;
          has_position_ =
              GetVarint64(&rest_, &source) && source <= UINT32_MAX && GetVarint64(&rest_, &next);
          marks_.push_back({static_cast<uint32_t>(source), next});
        }
        if (!has_position_) {  // nothing of a position that does not decode
          position_ = InputPosition{};
          marks_.clear();
          ok_ = false;
        }
      } else if (flag != 0) {
        ok_ = false;
      }
    }
  } else {
    ok_ = false;
  }
}

bool LogBlockReader::Next(ingest::Event* e) {
  LogRecord r;
  while (Next(&r)) {
    if (r.kind == LogRecord::Kind::kEvent) {
      *e = r.event;
      return true;
    }
  }
  return false;
}

bool LogBlockReader::Next(LogRecord* r) {
  if (!ok_ || rest_.empty()) return false;
  auto tag = static_cast<uint8_t>(rest_.front());
  rest_.remove_prefix(1);
  if (tag == kTimeChangeTag) {
    int64_t day;
    r->kind = LogRecord::Kind::kTimeChange;
    if (!GetVarintSigned(&rest_, &day) || day < INT32_MIN / 2 || day > INT32_MAX / 2 ||
        !GetString(&rest_, &r->user_id) || r->user_id.empty()) {
      return ok_ = false;
    }
    r->day = static_cast<int32_t>(day);
    return true;
  }
  r->kind = LogRecord::Kind::kEvent;
  ingest::Event* e = &r->event;
  uint8_t type = tag & 0x7F;
  if (type > static_cast<uint8_t>(EventType::kReferralCredit)) return ok_ = false;
  *e = ingest::Event{};
  e->type = static_cast<EventType>(type);
  e->community = (tag & 0x80) != 0;
  uint64_t ts, amount = 0;
  if (!GetVarint64(&rest_, &ts) || ts >= static_cast<uint64_t>(kMaxTsMs - kMinTsMs))
    return ok_ = false;
  e->ts_ms = static_cast<int64_t>(ts) + kMinTsMs;
  if (HasAmount(e->type) && (!GetVarint64(&rest_, &amount) || amount > (1ull << 50))) {
    return ok_ = false;
  }
  e->amount_fen = static_cast<int64_t>(amount);
  if (!GetString(&rest_, &e->event_id) || !GetString(&rest_, &e->user_id)) return ok_ = false;
  if (HasReferrer(e->type) && !GetString(&rest_, &e->referrer_id)) return ok_ = false;
  return true;
}

}  // namespace tierstream::state
