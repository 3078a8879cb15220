// libFuzzer target: every decoder of persisted bytes (user state, shard meta,
// log blocks) on arbitrary input. Whatever decodes must re-encode to bytes
// that decode to the same value.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "state/log_format.h"
#include "state/shard_state.h"
#include "state/user_state.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  using namespace tierstream;

  state::UserState user;
  if (state::DecodeUserState(in, &user).ok()) {
    std::string again;
    state::EncodeUserState(user, &again);
    state::UserState back;
    if (!state::DecodeUserState(again, &back).ok()) std::abort();
    std::string third;
    state::EncodeUserState(back, &third);
    if (third != again) std::abort();
  }

  // Day histograms are large: the two shard states are reused across inputs
  // (DecodeMeta overwrites everything it reads).
  static state::ShardState& shard = *new state::ShardState(0, state::Config{});
  static state::ShardState& copy = *new state::ShardState(0, state::Config{});
  uint64_t seq;
  if (shard.DecodeMeta(in, &seq).ok()) {
    // A version 1 meta comes back as version 2: compare from there on.
    std::string again;
    shard.EncodeMeta(seq, &again);
    uint64_t seq2;
    if (!copy.DecodeMeta(again, &seq2).ok() || seq2 != seq) std::abort();
    std::string third;
    copy.EncodeMeta(seq2, &third);
    if (third != again) std::abort();
  }

  state::LogBlockReader reader(in);
  state::LogRecord r;
  std::vector<state::LogRecord> records;
  std::string rebuilt;
  const int64_t t_ms = reader.ok() ? reader.t_ms() : INT64_MIN;  // a bad header: none
  state::BeginLogBlock(&rebuilt, t_ms, reader.has_position() ? &reader.position() : nullptr,
                       reader.marks());
  while (reader.Next(&r)) {
    records.push_back(r);
    if (r.kind == state::LogRecord::Kind::kEvent) {
      state::AppendEventRecord(r.event, &rebuilt);
    } else {
      state::AppendTimeChangeRecord(r.user_id, r.day, &rebuilt);
    }
  }
  state::SetLogBlockCounts(reader.counts(), &rebuilt);
  state::LogBlockReader again(rebuilt);
  if (again.counts().duplicates != reader.counts().duplicates ||
      again.counts().rejected != reader.counts().rejected ||
      again.counts().beyond_horizon != reader.counts().beyond_horizon || again.t_ms() != t_ms ||
      again.has_position() != reader.has_position() || again.position() != reader.position() ||
      again.marks() != reader.marks()) {
    std::abort();
  }
  for (const state::LogRecord& want : records) {
    if (!again.Next(&r) || r.kind != want.kind) std::abort();
    if (r.kind == state::LogRecord::Kind::kTimeChange) {
      if (r.user_id != want.user_id || r.day != want.day) std::abort();
      continue;
    }
    const ingest::Event& e = r.event;
    const ingest::Event& w = want.event;
    if (e.type != w.type || e.ts_ms != w.ts_ms || e.amount_fen != w.amount_fen ||
        e.event_id != w.event_id || e.user_id != w.user_id || e.referrer_id != w.referrer_id) {
      std::abort();
    }
  }
  if (again.Next(&r) || !again.ok()) std::abort();
  return 0;
}
