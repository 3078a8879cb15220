// Comparison of the service's answers (profiles as JSON or values, KPIs as
// JSON) with expected values: the batch evaluator's, or JSON from a reference file. Money is
// compared to the fen, ratios to a relative 1e-9, everything else exactly.
// Each difference is one line naming the field. Thread-safe.
#ifndef TIERSTREAM_VERIFY_DIFF_H_
#define TIERSTREAM_VERIFY_DIFF_H_

#include <string>
#include <vector>

#include "verify/batch_eval.h"

namespace tierstream::verify {

std::vector<std::string> DiffProfile(const std::string& json, const Profile& want);
// The same comparison of a profile the caller already has as a value.
std::vector<std::string> DiffProfile(const Profile& got, const Profile& want);
// `check_counters`: compare events_accepted/duplicate/rejected too.
std::vector<std::string> DiffKpis(const std::string& json, const Kpis& want, bool check_counters);
// Compares every key of the expected JSON object `want` with `got`.
std::vector<std::string> DiffJson(const std::string& got, const std::string& want,
                                  bool skip_counters);

}  // namespace tierstream::verify

#endif  // TIERSTREAM_VERIFY_DIFF_H_
