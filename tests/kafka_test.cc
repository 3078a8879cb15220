// The Kafka mode's tests, against librdkafka's mock cluster (`tierstream
// kafka-mock`) with kcat (Debian's kcat package) as an external client.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <string>

#include "common/hash.h"
#include "tests/process_util.h"
#include "tests/test_util.h"

namespace tierstream {
namespace {

using testing::FindProgram;
using testing::KafkaMockProcess;
using testing::Shell;
using testing::TempDir;

#define REQUIRE_KCAT()                                                                   \
  if (FindProgram("kcat").empty()) {                                                     \
    GTEST_SKIP() << "kcat is not installed (Debian package kcat; scripts/test installs " \
                    "it)";                                                               \
  }

// The cluster a real client sees: its topics with their partition counts,
// and a record keyed by a user lands where KafkaPartitionOf puts her when
// the producer uses Kafka's partitioner (librdkafka: murmur2_random).
TEST(KafkaMock, KcatSeesItsTopicsAndItsPartitionsAgreeWithPartitionOf) {
  REQUIRE_KCAT();
  KafkaMockProcess mock(3, {"events:12", "other:3"});
  ASSERT_FALSE(mock.bootstraps().empty()) << "kafka-mock printed no bootstrap address";
  const std::string b = mock.bootstraps();
  auto meta = Shell("kcat -L -b " + b);
  ASSERT_EQ(meta.exit_code, 0) << meta.output;
  EXPECT_NE(meta.output.find("3 brokers:"), std::string::npos) << meta.output;
  EXPECT_NE(meta.output.find("topic \"events\" with 12 partitions:"), std::string::npos)
      << meta.output;
  EXPECT_NE(meta.output.find("topic \"other\" with 3 partitions:"), std::string::npos)
      << meta.output;

  TempDir dir;
  const std::string input = dir.path() + "/keyed.txt";
  {
    std::ofstream f(input);
    for (int i = 0; i < 300; ++i) {
      f << "member-" << i * 7919 << "\t{\"event_id\":\"e" << i << "\"}\n";
    }
  }
  auto produce =
      Shell("kcat -P -b " + b + " -t events -K \"\\t\" -X partitioner=murmur2_random -l " + input);
  ASSERT_EQ(produce.exit_code, 0) << produce.output;
  auto consume = Shell("kcat -C -b " + b + " -t events -o beginning -e -q -f \"%p\\t%k\\n\"");
  ASSERT_EQ(consume.exit_code, 0) << consume.output;
  size_t records = 0;
  std::map<uint32_t, int> per_partition;
  for (const std::string& line : testing::SplitLines(consume.output)) {
    const size_t tab = line.find('\t');
    ASSERT_NE(tab, std::string::npos) << line;
    const uint32_t partition = static_cast<uint32_t>(std::stoul(line.substr(0, tab)));
    const std::string key = line.substr(tab + 1);
    EXPECT_EQ(partition, KafkaPartitionOf(key, 12)) << key;
    ++per_partition[partition];
    ++records;
  }
  EXPECT_EQ(records, 300u);
  EXPECT_EQ(per_partition.size(), 12u);  // 300 keys reach every partition
  const int status = mock.Terminate();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

TEST(KafkaMock, ABadTopicIsRefusedByName) {
  auto run = testing::RunToolCaptured({"kafka-mock", "--topic", "events:0"});
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_NE(run.err.find("events:0"), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("partition count"), std::string::npos) << run.err;
  run = testing::RunToolCaptured({"kafka-mock", "--topic", "bad/name:3"});
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_NE(run.err.find("[a-zA-Z0-9._-]"), std::string::npos) << run.err;
}

}  // namespace
}  // namespace tierstream
