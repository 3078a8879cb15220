// Converts exact decimal yuan text to integer fen and fen to JSON yuan.
#include "common/money.h"

#include <cstdlib>

namespace tierstream {

DecimalError DecimalToFen(std::string_view s, int64_t max_yuan, int64_t* fen) {
  // JSON number grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
  size_t i = 0;
  bool negative = false;
  if (i < s.size() && s[i] == '-') {
    negative = true;
    ++i;
  }
  // Collect significant digits and the decimal exponent of the last digit.
  char digits[64];
  int ndigits = 0;       // significant digits kept (leading zeros dropped)
  int64_t exponent = 0;  // value = digits * 10^exponent
  bool nonzero_dropped = false;
  size_t int_start = i;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
    if (ndigits < 40) {
      if (ndigits > 0 || s[i] != '0') digits[ndigits++] = s[i];
    } else {
      ++exponent;  // past 40 digits the value is far beyond any limit anyway
      nonzero_dropped |= s[i] != '0';
    }
    ++i;
  }
  size_t int_len = i - int_start;
  if (int_len == 0 || (int_len > 1 && s[int_start] == '0')) return DecimalError::kSyntax;
  if (i < s.size() && s[i] == '.') {
    ++i;
    size_t frac_start = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      if (ndigits < 40) {
        if (ndigits > 0 || s[i] != '0') digits[ndigits++] = s[i];
        --exponent;
      } else {
        nonzero_dropped |= s[i] != '0';
      }
      ++i;
    }
    if (i == frac_start) return DecimalError::kSyntax;
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    bool eneg = false;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) eneg = s[i++] == '-';
    size_t exp_start = i;
    int64_t e = 0;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      if (e < 100000) e = e * 10 + (s[i] - '0');
      ++i;
    }
    if (i == exp_start) return DecimalError::kSyntax;
    exponent += eneg ? -e : e;
  }
  if (i != s.size()) return DecimalError::kSyntax;
  if (ndigits == 0) {  // zero, with or without sign
    *fen = 0;
    return DecimalError::kOk;
  }
  if (negative) return DecimalError::kNegative;
  // Magnitude: number of integer digits of the value = ndigits + exponent.
  int64_t int_digits = ndigits + exponent;
  if (int_digits > 19) return DecimalError::kTooLarge;
  // fen = round(digits * 10^(exponent+2)), half away from zero.
  int64_t shift = exponent + 2;
  __int128 value = 0;
  for (int k = 0; k < ndigits; ++k) {
    int64_t pos_exp = shift + (ndigits - 1 - k);  // power of ten of this digit in fen
    if (pos_exp < 0) {
      // Digits below one fen: the first decides rounding.
      if (pos_exp == -1 && digits[k] >= '5') value += 1;
      break;
    }
    __int128 d = digits[k] - '0';
    for (int64_t p = 0; p < pos_exp; ++p) d *= 10;
    value += d;
  }
  (void)nonzero_dropped;  // beyond 40 significant digits the value is out of range
  __int128 max_fen = static_cast<__int128>(max_yuan) * 100;
  if (value > max_fen) return DecimalError::kTooLarge;
  // An exact value above max_yuan that rounds down to max_fen is still too large.
  if (value == max_fen) {
    // Any nonzero digit below one fen means the exact value exceeds max_yuan
    // unless it rounded up to reach it.
    bool below = false;
    for (int k = 0; k < ndigits; ++k) {
      int64_t pos_exp = shift + (ndigits - 1 - k);
      if (pos_exp < 0 && digits[k] != '0') below = true;
    }
    bool rounded_up = false;
    for (int k = 0; k < ndigits; ++k) {
      if (shift + (ndigits - 1 - k) == -1) rounded_up = digits[k] >= '5';
    }
    if (below && !rounded_up) return DecimalError::kTooLarge;
  }
  *fen = static_cast<int64_t>(value);
  return DecimalError::kOk;
}

void AppendYuan(std::string* out, int64_t fen) {
  char buf[32];
  char* end = buf + sizeof buf;
  char* p = end;
  bool negative = fen < 0;
  uint64_t v = negative ? 0 - static_cast<uint64_t>(fen) : static_cast<uint64_t>(fen);
  *--p = static_cast<char>('0' + v % 10);
  v /= 10;
  *--p = static_cast<char>('0' + v % 10);
  v /= 10;
  *--p = '.';
  do {
    *--p = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  if (negative) *--p = '-';
  out->append(p, static_cast<size_t>(end - p));
}

}  // namespace tierstream
