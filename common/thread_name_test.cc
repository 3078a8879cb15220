#include "common/thread_name.h"

#include <gtest/gtest.h>
#include <pthread.h>

#include <fstream>
#include <string>
#include <thread>

namespace tierstream {
namespace {

std::string NameOf(pthread_t t) {
  char name[16] = "";
  EXPECT_EQ(pthread_getname_np(t, name, sizeof name), 0);
  return name;
}

TEST(ThreadName, IsWhatTopAndPsShowAndLongNamesAreCut) {
  std::thread t([] {
    NameThisThread("shard-11");
    EXPECT_EQ(NameOf(pthread_self()), "shard-11");
    // What `top -H` reads.
    std::ifstream comm("/proc/thread-self/comm");
    std::string line;
    std::getline(comm, line);
    EXPECT_EQ(line, "shard-11");
    NameThisThread("a-name-longer-than-fifteen-bytes");
    EXPECT_EQ(NameOf(pthread_self()), "a-name-longer-t");
  });
  t.join();
}

}  // namespace
}  // namespace tierstream
