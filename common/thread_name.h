// NameThisThread: names the calling thread as `top -H`, `ps -L`, perf and
// gdb show it ("shard-3", "committer", "kafka-input", ...), so that an
// operator can tell where a process's CPU goes. Linux keeps at most 15
// bytes of a name: longer ones are cut.
#ifndef TIERSTREAM_COMMON_THREAD_NAME_H_
#define TIERSTREAM_COMMON_THREAD_NAME_H_

#include <string>

namespace tierstream {

void NameThisThread(const std::string& name);

}  // namespace tierstream

#endif  // TIERSTREAM_COMMON_THREAD_NAME_H_
