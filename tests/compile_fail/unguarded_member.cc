// Must NOT compile under clang -Wthread-safety -Werror: scripts/test checks
// that it fails, so that the thread-safety build can be trusted to reject a
// member marked ABSL_GUARDED_BY that is touched without its mutex.
#include "common/mutex.h"

namespace {

class Counter {
 public:
  void Add() {
    tierstream::MutexLock lock(&mu_);
    ++n_;
  }
  void AddUnlocked() { ++n_; }  // the violation

 private:
  tierstream::Mutex mu_;
  int n_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace

int main() {
  Counter c;
  c.Add();
  c.AddUnlocked();
}
