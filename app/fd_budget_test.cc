#include "app/fd_budget.h"

#include <gtest/gtest.h>

namespace tierstream::app {
namespace {

FdBudgetInput Input(uint64_t limit, int max_connections, bool given) {
  FdBudgetInput in;
  in.limit = limit;
  in.hard_limit = limit;
  in.open_at_start = 4;
  in.io_threads = 2;
  in.max_connections = max_connections;
  in.max_connections_given = given;
  in.probe_connections = 16;
  in.store_fds = 256;
  return in;
}

// Regression (issue 10): with `ulimit -n 1024` and the default 1024
// connections, idle connections took the descriptors RocksDB needed for its
// next WAL and every later write failed. Everything must fit in the limit.
TEST(FdBudget, EveryPartFitsInTheLimit) {
  auto b = PlanFds(Input(524288, 1024, false));
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ(b->max_connections, 1024);
  EXPECT_FALSE(b->lowered);
  // 4 open + 14 for two io threads and the listeners + 256 + 64 + 16 + 1024.
  EXPECT_EQ(b->needed, 4u + b->server_fds + 256 + kFdReserve + 16 + 1024);
  EXPECT_EQ(b->server_fds, 14u);
  EXPECT_EQ(b->Describe(Input(524288, 1024, false)),
            "1024 connections + 16 health probes + 256 for RocksDB + 18 for the server + 64 spare");
}

TEST(FdBudget, WebhooksTakeTheirIoContextAndAConnectionEach) {
  FdBudgetInput in = Input(524288, 1024, false);
  in.webhooks = 2;
  auto b = PlanFds(in);
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ(b->server_fds, 14u + 3 + 2);
}

TEST(FdBudget, ADefaultThatDoesNotFitIsLoweredToWhatDoes) {
  auto b = PlanFds(Input(1024, 1024, false));
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_TRUE(b->lowered);
  // 1024 - 4 - 14 - 256 - 64 - 16
  EXPECT_EQ(b->max_connections, 670);
  EXPECT_EQ(b->needed, 1024u + 354);
  // What fits exactly is not lowered.
  auto exact = PlanFds(Input(1024, 670, true));
  ASSERT_TRUE(exact.ok());
  EXPECT_EQ(exact->max_connections, 670);
  EXPECT_FALSE(exact->lowered);
}

TEST(FdBudget, AGivenValueThatDoesNotFitIsAnErrorNamingTheFlagAndTheNumbers) {
  auto b = PlanFds(Input(1024, 1024, true));
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().ToString(),
            "--max-connections 1024 does not fit in the open-file limit 1024 (hard limit 1024): "
            "1024 connections + 16 health probes + 256 for RocksDB + 18 for the server + 64 "
            "spare need 1378; raise the limit (ulimit -n; systemd: LimitNOFILE=) to at least "
            "1378, or pass --max-connections 670 or less");
}

TEST(FdBudget, ALimitWithNoRoomForConnectionsIsAnError) {
  FdBudgetInput in = Input(256, 1024, false);
  in.hard_limit = UINT64_MAX;
  auto b = PlanFds(in);
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.status().ToString().find("the open-file limit 256 (hard limit unlimited) leaves no "
                                       "descriptor for connections"),
            std::string::npos)
      << b.status().ToString();
}

TEST(FdBudget, MoreIoThreadsTakeMoreDescriptors) {
  FdBudgetInput in = Input(1024, 1024, false);
  in.io_threads = 8;
  auto b = PlanFds(in);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->server_fds, 32u);
  EXPECT_EQ(b->max_connections, 670 - 18);
}

}  // namespace
}  // namespace tierstream::app
