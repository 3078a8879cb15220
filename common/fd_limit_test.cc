#include "common/fd_limit.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>

namespace tierstream {
namespace {

TEST(FdLimit, CountsOpenDescriptorsAndWhatIsLeft) {
  const uint64_t before = OpenFdCount();
  ASSERT_NE(before, UINT64_MAX);
  int fds[3];
  for (int& fd : fds) fd = ::open("/dev/null", O_RDONLY);
  EXPECT_EQ(OpenFdCount(), before + 3);
  EXPECT_EQ(FreeFds(), CurrentFdLimit().soft - (before + 3));
  for (int fd : fds) ::close(fd);
  EXPECT_EQ(OpenFdCount(), before);
}

TEST(FdLimit, RaisesTheSoftLimitToTheHardOne) {
  rlimit saved{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &saved), 0);
  if (saved.rlim_max == RLIM_INFINITY || saved.rlim_max < 64) GTEST_SKIP() << "hard limit unusable";
  rlimit low = saved;
  low.rlim_cur = std::min<rlim_t>(saved.rlim_max, OpenFdCount() + 32);
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &low), 0);
  const FdLimit raised = RaiseFdLimit();
  EXPECT_EQ(raised.raised_from, low.rlim_cur);
  EXPECT_EQ(raised.soft, saved.rlim_max);
  EXPECT_EQ(CurrentFdLimit().soft, saved.rlim_max);
  // With no descriptor left (the limit bounds numbers: at the lowest free
  // one), not even /proc/self/fd can be read: none is free.
  const int lowest_free = ::open("/dev/null", O_RDONLY);
  ASSERT_GE(lowest_free, 0);
  ::close(lowest_free);
  rlimit full = saved;
  full.rlim_cur = static_cast<rlim_t>(lowest_free);
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &full), 0);
  const uint64_t open_when_full = OpenFdCount();
  const uint64_t free_when_full = FreeFds();
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &saved), 0);
  EXPECT_EQ(open_when_full, UINT64_MAX);
  EXPECT_EQ(free_when_full, 0u);
}

}  // namespace
}  // namespace tierstream
