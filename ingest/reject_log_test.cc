#include "ingest/reject_log.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

namespace tierstream::ingest {
namespace {

std::string TempPath() {
  char tmpl[] = "/tmp/reject_log_test_XXXXXX";
  const int fd = ::mkstemp(tmpl);
  ::close(fd);
  ::unlink(tmpl);
  return tmpl;
}

std::string Contents(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(RejectLog, WritesRunsOfRecordsUntilItsBudgetAndCountsTheRest) {
  const std::string path = TempPath();
  {
    RejectLog log(path, 200);
    log.Append("http", 7, "ts: missing", R"({"event_id":"a"})");
    std::string run;
    RejectLog::Format("tcp", 8, "not a JSON object", "1", &run);
    RejectLog::Format("tcp", 9, "not a JSON object", "\"q\"", &run);
    const size_t first = Contents(path).size();
    ASSERT_GT(first, 0u);
    ASSERT_GT(first + run.size(), 200u);  // the run does not fit: dropped whole
    log.Write(run, 2);
    EXPECT_EQ(Contents(path).size(), first);
    EXPECT_EQ(log.dropped(), 2u);
    log.Write({}, 5);  // only counted
    EXPECT_EQ(log.dropped(), 7u);
    EXPECT_TRUE(log.full());
  }
  const std::string text = Contents(path);
  EXPECT_NE(
      text.find(R"("source":"http","line":7,"error":"ts: missing","raw":"{\"event_id\":\"a\"}"})"),
      std::string::npos)
      << text;
  EXPECT_EQ(text.back(), '\n');
  std::remove(path.c_str());
}

TEST(RejectLog, AnEmptyPathOnlyCounts) {
  RejectLog log("", 1 << 20);
  log.Append("http", 1, "bad", "x");
  EXPECT_EQ(log.dropped(), 1u);
  EXPECT_TRUE(log.full());
}

}  // namespace
}  // namespace tierstream::ingest
