#include "tests/test_util.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "ingest/decoder.h"
#include "tools/client.h"

namespace tierstream::testing {

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base ? base : "/tmp") + "/tierstream-test-XXXXXX";
  char* p = mkdtemp(tmpl.data());
  if (p == nullptr) std::abort();
  path_ = p;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::vector<std::string> GenerateLines(const tools::GenOptions& options) {
  char* buf = nullptr;
  size_t size = 0;
  std::FILE* f = open_memstream(&buf, &size);
  if (!tools::GenerateStream(options, f)) std::abort();
  std::fclose(f);
  std::string text(buf, size);
  std::free(buf);
  return SplitLines(text);
}

std::vector<std::string> SplitLines(const std::string& text) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    if (nl == std::string::npos) nl = text.size();
    lines.push_back(text.substr(start, nl - start));
    start = nl + 1;
  }
  return lines;
}

std::string Join(const std::vector<std::string>& lines, size_t begin, size_t end) {
  std::string out;
  for (size_t i = begin; i < end && i < lines.size(); ++i) {
    out += lines[i];
    out += '\n';
  }
  return out;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

namespace {

struct EvalSink : ingest::DecodeSink {
  verify::BatchEvaluator* eval;
  void OnEvent(const ingest::Event& e) override { eval->Add(e); }
  void OnReject(uint64_t, std::string_view, std::string_view) override { eval->AddRejected(1); }
};

}  // namespace

std::string LastLine(const std::string& text) {
  size_t end = text.size();
  while (end > 0 && text[end - 1] == '\n') --end;
  const size_t nl = end == 0 ? std::string::npos : text.rfind('\n', end - 1);
  const size_t start = nl == std::string::npos ? 0 : nl + 1;
  return text.substr(start, end - start);
}

size_t ProfileDifferences(const std::string& http, const Reference& ref, size_t report) {
  size_t bad = 0;
  for (const auto& [id, want] : ref.profiles) {
    auto u = tools::HttpRequest(http, "GET", "/v1/users/" + tools::UrlEncode(id));
    if (!u.ok()) {
      ADD_FAILURE() << u.status().ToString();
      return SIZE_MAX;
    }
    auto d = DiffProfile(u->body, want);
    if (!d.empty() && ++bad <= report) ADD_FAILURE() << d[0];
  }
  return bad;
}

Reference Evaluate(const std::vector<std::string>& lines, verify::Thresholds thresholds) {
  verify::BatchEvaluator eval(8 * 3'600'000, thresholds);
  ingest::Decoder decoder;
  Arena arena;
  EvalSink sink;
  sink.eval = &eval;
  std::string text = Join(lines, 0, lines.size());
  ingest::PaddedBuffer buf(text.size());
  buf.Append(text);
  decoder.DecodeLines(buf.view(), 1, &arena, &sink);
  Reference r;
  r.profiles = eval.Profiles();
  r.kpis = eval.ComputeKpis();
  return r;
}

}  // namespace tierstream::testing
