// libFuzzer target: the NDJSON decoder and validator on arbitrary bytes, as
// lines and as a JSON array body. Every decoded event must satisfy the
// contract (ids 1..128 bytes, ts in range, amounts 0..1e9 yuan).
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "common/time.h"
#include "ingest/decoder.h"

namespace {

using tierstream::ingest::Event;
using tierstream::ingest::EventType;

struct CheckingSink final : tierstream::ingest::DecodeSink {
  void OnEvent(const Event& e) override {
    bool ok = !e.event_id.empty() && e.event_id.size() <= 128 && !e.user_id.empty() &&
              e.user_id.size() <= 128 && e.referrer_id.size() <= 128 &&
              tierstream::TsInRange(e.ts_ms) && e.amount_fen >= 0 &&
              e.amount_fen <= 100'000'000'000 && e.type != EventType::kReferralCredit;
    if (!ok) std::abort();
  }
  void OnReject(uint64_t, std::string_view reason, std::string_view) override {
    if (reason.empty()) std::abort();
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static tierstream::ingest::Decoder decoder;
  tierstream::ingest::PaddedBuffer buf(size);
  buf.Append(std::string_view(reinterpret_cast<const char*>(data), size));
  tierstream::Arena arena;
  CheckingSink sink;
  decoder.DecodeLines(buf.view(), 1, &arena, &sink);
  (void)decoder.DecodeArray(buf.view(), &arena, &sink);
  return 0;
}
