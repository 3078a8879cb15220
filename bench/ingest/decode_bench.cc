// Decode + validate throughput of the NDJSON decoder on realistic lines.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "ingest/decoder.h"

namespace tierstream::ingest {
namespace {

std::string MakeLines(int n) {
  std::string out;
  char buf[512];
  for (int i = 0; i < n; ++i) {
    int64_t ts = 1763971200000 + i * 997;
    switch (i % 4) {
      case 0:
        std::snprintf(
            buf, sizeof buf,
            R"({"event_id":"ev-%d","type":"message","user_id":"u%07d","ts":%lld,"group_id":"g%d","text":"大家好 👋 %d"})",
            i, i % 100000, static_cast<long long>(ts), i % 50, i);
        break;
      case 1:
        std::snprintf(
            buf, sizeof buf,
            R"({"event_id":"ev-%d","type":"order","user_id":"u%07d","ts":%lld,"order_id":"o%d","amount":%d.%02d,"channel":"community"})",
            i, i % 100000, static_cast<long long>(ts), i, i % 900, i % 100);
        break;
      case 2:
        std::snprintf(
            buf, sizeof buf,
            R"({"event_id":"ev-%d","type":"reaction","user_id":"u%07d","ts":"2025-11-24T09:15:00.%03d+08:00","group_id":"g1"})",
            i, i % 100000, i % 1000);
        break;
      default:
        std::snprintf(
            buf, sizeof buf,
            R"({"event_id":"ev-%d","type":"join","user_id":"u%07d","ts":%lld,"group_id":"g2","referrer_id":"u%07d"})",
            i, i % 100000, static_cast<long long>(ts), (i * 7) % 100000);
    }
    out += buf;
    out += '\n';
  }
  return out;
}

struct CountSink : DecodeSink {
  uint64_t events = 0, rejects = 0;
  void OnEvent(const Event&) override { ++events; }
  void OnReject(uint64_t, std::string_view, std::string_view) override { ++rejects; }
};

void BM_Decoder_MixedLines(benchmark::State& state) {
  const int n = 100000;
  std::string text = MakeLines(n);
  PaddedBuffer buf(text.size());
  buf.Append(text);
  Decoder decoder;
  {  // Verify before timing: every line must decode.
    Arena arena;
    CountSink check;
    decoder.DecodeLines(buf.view(), 1, &arena, &check);
    if (check.events != static_cast<uint64_t>(n) || check.rejects != 0) {
      state.SkipWithError("decoder output is wrong");
      return;
    }
  }
  for (auto _ : state) {
    Arena arena;
    CountSink sink;
    decoder.DecodeLines(buf.view(), 1, &arena, &sink);
    benchmark::DoNotOptimize(sink.events);
  }
  state.SetItemsProcessed(state.iterations() * n);
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(text.size()));
}
BENCHMARK(BM_Decoder_MixedLines)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace tierstream::ingest

BENCHMARK_MAIN();
