#include "tools/progress.h"

#include <gtest/gtest.h>

namespace tierstream::tools {
namespace {

TEST(Progress, RendersCountRatePercentAndEta) {
  Progress p("replay", 1000, "lines", "events", false);
  EXPECT_EQ(p.Render(250, 1234567, 2.0, false),
            "replay: 1,234,567 lines, 617,283 events/s, 25.0%, ETA 0:06");
  EXPECT_EQ(p.Render(999, 10, 3725.0, false), "replay: 10 lines, 0 events/s, 99.9%, ETA 0:04");
  EXPECT_EQ(p.Render(1, 10, 3725.0, false), "replay: 10 lines, 0 events/s, 0.1%, ETA 1033:41:15");
  EXPECT_EQ(p.Render(1000, 3, 1.5, true), "replay: 3 lines, 2 events/s, 100%, 1.5 s");
}

TEST(Progress, LeavesOutPercentAndEtaWhenTheTotalIsUnknown) {
  Progress p("replay", 0, "lines", "events", false);
  EXPECT_EQ(p.Render(5000, 100, 0.5, false), "replay: 100 lines, 200 events/s");
  EXPECT_EQ(p.Render(5000, 100, 0.5, true), "replay: 100 lines, 200 events/s, 0.5 s");
}

}  // namespace
}  // namespace tierstream::tools
