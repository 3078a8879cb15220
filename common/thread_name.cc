#include "common/thread_name.h"

#include <pthread.h>

namespace tierstream {

void NameThisThread(const std::string& name) {
  // Best effort: a name that cannot be set leaves the thread unnamed.
  (void)pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
}

}  // namespace tierstream
