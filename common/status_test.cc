#include "common/status.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace tierstream {
namespace {

Status FailIf(bool fail) { return fail ? Status::IoError("disk: gone") : Status::Ok(); }

Result<int> Parse(bool fail) {
  if (fail) return Status::InvalidArgument("n: not a number");
  return 42;
}

Status Twice(bool first_fails, bool second_fails, int* calls) {
  ++*calls;
  RETURN_IF_ERROR(FailIf(first_fails));
  ++*calls;
  RETURN_IF_ERROR(FailIf(second_fails));
  ++*calls;
  return Status::Ok();
}

Result<int> Doubled(bool fail) {
  ASSIGN_OR_RETURN(const int n, Parse(fail));
  return 2 * n;
}

Result<std::unique_ptr<int>> MoveOnly(bool fail) {
  if (fail) return Status::NotFound("user: not found");
  return std::make_unique<int>(7);
}

Status UsesMoveOnly(bool fail, int* out) {
  ASSIGN_OR_RETURN(std::unique_ptr<int> p, MoveOnly(fail));
  *out = *p;
  return Status::Ok();
}

TEST(Status, OkCarriesNoMessage) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kOk);
  EXPECT_EQ(s.message(), "");
  EXPECT_EQ(s.ToString(), "OK");
}

TEST(Status, ErrorKeepsCodeAndMessageThroughCopies) {
  Status s = Status::Corruption("meta: truncated");
  Status copy = s;
  EXPECT_FALSE(copy.ok());
  EXPECT_EQ(copy.code(), StatusCode::kCorruption);
  EXPECT_EQ(copy.message(), "meta: truncated");
  EXPECT_EQ(s.message(), "meta: truncated");
}

TEST(Result, HasTheExpectedSubset) {
  Result<int> good = Parse(false);
  ASSERT_TRUE(good.has_value());
  EXPECT_TRUE(static_cast<bool>(good));
  EXPECT_EQ(*good, 42);
  EXPECT_EQ(good.value_or(0), 42);
  EXPECT_TRUE(good.error().ok());

  Result<int> bad = Parse(true);
  EXPECT_FALSE(bad.has_value());
  EXPECT_FALSE(static_cast<bool>(bad));
  EXPECT_EQ(bad.value_or(-1), -1);
  EXPECT_EQ(bad.error().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.error().message(), "n: not a number");
}

TEST(Result, ReturnIfErrorStopsAtTheFirstError) {
  int calls = 0;
  EXPECT_TRUE(Twice(false, false, &calls).ok());
  EXPECT_EQ(calls, 3);
  calls = 0;
  Status s = Twice(true, false, &calls);
  EXPECT_EQ(s.code(), StatusCode::kIoError);
  EXPECT_EQ(calls, 1);
  calls = 0;
  EXPECT_FALSE(Twice(false, true, &calls).ok());
  EXPECT_EQ(calls, 2);
}

TEST(Result, AssignOrReturnPropagatesTheStatusOrMovesTheValue) {
  Result<int> d = Doubled(false);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(*d, 84);
  Result<int> e = Doubled(true);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.error().message(), "n: not a number");

  int out = 0;
  EXPECT_TRUE(UsesMoveOnly(false, &out).ok());
  EXPECT_EQ(out, 7);
  EXPECT_EQ(UsesMoveOnly(true, &out).code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace tierstream
