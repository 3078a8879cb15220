// Helpers shared by the integration tests: temporary data dirs, generated
// streams, the batch reference (verify::BatchEvaluator) and diffs of the
// service's JSON answers against it.
#ifndef TIERSTREAM_TESTS_TEST_UTIL_H_
#define TIERSTREAM_TESTS_TEST_UTIL_H_

#include <map>
#include <string>
#include <vector>

#include "tools/gen.h"
#include "verify/batch_eval.h"
#include "verify/diff.h"

namespace tierstream::testing {

using verify::DiffJson;
using verify::DiffKpis;
using verify::DiffProfile;

// A fresh empty directory under $TMPDIR, removed by the destructor.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::vector<std::string> GenerateLines(const tools::GenOptions& options);
std::string Join(const std::vector<std::string>& lines, size_t begin, size_t end);
std::string ReadFile(const std::string& path);
std::vector<std::string> SplitLines(const std::string& text);
// The last line of a TCP answer: its summary (ack lines may precede it).
std::string LastLine(const std::string& text);

struct Reference {
  std::map<std::string, verify::Profile> profiles;
  verify::Kpis kpis;
};
// GETs every profile of `ref` from the server at `http` ("host:port") and
// diffs it; reports the first `report` differences as test failures and
// returns how many profiles differ (SIZE_MAX when a request fails).
size_t ProfileDifferences(const std::string& http, const Reference& ref, size_t report = 3);

// Decodes `lines` and evaluates them with the batch evaluator (default config).
Reference Evaluate(const std::vector<std::string>& lines,
                   verify::Thresholds thresholds = verify::Thresholds{});

}  // namespace tierstream::testing

#endif  // TIERSTREAM_TESTS_TEST_UTIL_H_
