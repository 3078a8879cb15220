#include "common/money.h"

#include <gtest/gtest.h>

namespace tierstream {
namespace {

int64_t Fen(std::string_view text) {
  int64_t fen = -1;
  EXPECT_EQ(DecimalToFen(text, 1'000'000'000, &fen), DecimalError::kOk) << text;
  return fen;
}

TEST(DecimalToFen, ConvertsPlainDecimals) {
  EXPECT_EQ(Fen("129.5"), 12950);
  EXPECT_EQ(Fen("0"), 0);
  EXPECT_EQ(Fen("-0"), 0);
  EXPECT_EQ(Fen("99"), 9900);
  EXPECT_EQ(Fen("0.01"), 1);
  EXPECT_EQ(Fen("1000000000"), 100'000'000'000);
}

TEST(DecimalToFen, RoundsHalfAwayFromZeroOnTheExactDecimal) {
  // 200.005 as a double is 200.00499999..., which would round down.
  EXPECT_EQ(Fen("200.005"), 20001);
  EXPECT_EQ(Fen("200.0049999"), 20000);
  EXPECT_EQ(Fen("0.005"), 1);
  EXPECT_EQ(Fen("0.0049"), 0);
  EXPECT_EQ(Fen("1.995"), 200);
}

TEST(DecimalToFen, HandlesExponents) {
  EXPECT_EQ(Fen("1e2"), 10000);
  EXPECT_EQ(Fen("1.2345E2"), 12345);
  EXPECT_EQ(Fen("12345e-2"), 12345);
  EXPECT_EQ(Fen("5e-3"), 1);
  EXPECT_EQ(Fen("1e9"), 100'000'000'000);
}

TEST(DecimalToFen, RejectsOutOfRangeAndBadSyntax) {
  int64_t fen;
  EXPECT_EQ(DecimalToFen("-5", 1'000'000'000, &fen), DecimalError::kNegative);
  EXPECT_EQ(DecimalToFen("-0.01", 1'000'000'000, &fen), DecimalError::kNegative);
  EXPECT_EQ(DecimalToFen("1e400", 1'000'000'000, &fen), DecimalError::kTooLarge);
  EXPECT_EQ(DecimalToFen("1000000000.001", 1'000'000'000, &fen), DecimalError::kTooLarge);
  EXPECT_EQ(DecimalToFen("1000000000.01", 1'000'000'000, &fen), DecimalError::kTooLarge);
  EXPECT_EQ(DecimalToFen("999999999.999", 1'000'000'000, &fen), DecimalError::kOk);
  EXPECT_EQ(fen, 100'000'000'000);
  EXPECT_EQ(DecimalToFen("01", 1'000'000'000, &fen), DecimalError::kSyntax);
  EXPECT_EQ(DecimalToFen("1.", 1'000'000'000, &fen), DecimalError::kSyntax);
  EXPECT_EQ(DecimalToFen(".5", 1'000'000'000, &fen), DecimalError::kSyntax);
  EXPECT_EQ(DecimalToFen("1e", 1'000'000'000, &fen), DecimalError::kSyntax);
  EXPECT_EQ(DecimalToFen("", 1'000'000'000, &fen), DecimalError::kSyntax);
}

TEST(AppendYuan, FormatsFenWithTwoDecimals) {
  std::string s;
  AppendYuan(&s, 12950);
  EXPECT_EQ(s, "129.50");
  s.clear();
  AppendYuan(&s, -2950);
  EXPECT_EQ(s, "-29.50");
  s.clear();
  AppendYuan(&s, 7);
  EXPECT_EQ(s, "0.07");
  s.clear();
  AppendYuan(&s, 0);
  EXPECT_EQ(s, "0.00");
}

}  // namespace
}  // namespace tierstream
