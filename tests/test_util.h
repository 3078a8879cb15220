// Helpers shared by the integration tests: temporary data dirs, generated
// streams, the batch reference (verify::BatchEvaluator) and diffs of the
// service's JSON answers against it.
#ifndef TIERSTREAM_TESTS_TEST_UTIL_H_
#define TIERSTREAM_TESTS_TEST_UTIL_H_

#include <map>
#include <string>
#include <vector>

#include "app/gen.h"
#include "verify/batch_eval.h"

namespace tierstream::testing {

// A fresh empty directory under $TMPDIR, removed by the destructor.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::vector<std::string> GenerateLines(const app::GenOptions& options);
std::string Join(const std::vector<std::string>& lines, size_t begin, size_t end);
std::string ReadFile(const std::string& path);
std::vector<std::string> SplitLines(const std::string& text);

struct Reference {
  std::map<std::string, verify::Profile> profiles;
  verify::Kpis kpis;
};
// Decodes `lines` and evaluates them with the batch evaluator (default config).
Reference Evaluate(const std::vector<std::string>& lines,
                   verify::Thresholds thresholds = verify::Thresholds{});

// Differences between a JSON answer of the service and the reference; empty if equal.
std::vector<std::string> DiffProfile(const std::string& json, const verify::Profile& want);
// `check_counters`: compare events_accepted/duplicate/rejected too.
std::vector<std::string> DiffKpis(const std::string& json, const verify::Kpis& want,
                                  bool check_counters);

// Compares every key of the expected JSON object `want` with `got` the way
// the conformance tool does: money to the fen, ratios to 1e-9, the rest exactly.
std::vector<std::string> DiffJson(const std::string& got, const std::string& want,
                                  bool skip_counters);

}  // namespace tierstream::testing

#endif  // TIERSTREAM_TESTS_TEST_UTIL_H_
