// Money is integer fen (1/100 yuan) everywhere; these helpers convert exact
// decimal text to fen and fen to the JSON yuan number of SPEC §5.
// Pure functions; thread-safe.
#ifndef TIERSTREAM_COMMON_MONEY_H_
#define TIERSTREAM_COMMON_MONEY_H_

#include <cstdint>
#include <string>
#include <string_view>

namespace tierstream {

enum class DecimalError { kOk, kSyntax, kNegative, kTooLarge };

// Converts the text of a JSON number ("129.5", "2e2", "-0", "200.005") to fen,
// rounding half away from zero on the exact decimal value, never through a
// double. Values above `max_yuan` (exact comparison) give kTooLarge; values
// below zero give kNegative ("-0" is zero).
DecimalError DecimalToFen(std::string_view text, int64_t max_yuan, int64_t* fen);

// Appends fen as a JSON number in yuan with two decimals: 12950 -> "129.50".
void AppendYuan(std::string* out, int64_t fen);

}  // namespace tierstream

#endif  // TIERSTREAM_COMMON_MONEY_H_
