// RocksDB's own figures of the two databases (memtables, compaction debt,
// live tables, write stalls), read through its properties for /metrics.
#include <rocksdb/db.h>

#include <charconv>
#include <map>
#include <string>
#include <vector>

#include "state/store.h"
#include "state/store_impl.h"

namespace tierstream::state {

namespace {

uint64_t IntProperty(rocksdb::DB* db, const std::string& property) {
  uint64_t v = 0;
  return db->GetAggregatedIntProperty(property, &v) ? v : 0;
}

// A counter of a map property ("io_stalls.total_stop" of "rocksdb.cfstats"),
// written as a decimal; 0 when absent.
uint64_t MapFigure(const std::map<std::string, std::string>& map, const std::string& key) {
  auto it = map.find(key);
  if (it == map.end()) return 0;
  uint64_t v = 0;
  const std::string& text = it->second;
  std::from_chars(text.data(), text.data() + text.size(), v);
  return v;
}

DbFigures Read(rocksdb::DB* db, const std::vector<rocksdb::ColumnFamilyHandle*>& families) {
  DbFigures f;
  if (db == nullptr) return f;
  f.memtable_bytes = IntProperty(db, rocksdb::DB::Properties::kCurSizeAllMemTables);
  f.pending_compaction_bytes =
      IntProperty(db, rocksdb::DB::Properties::kEstimatePendingCompactionBytes);
  f.live_sst_bytes = IntProperty(db, rocksdb::DB::Properties::kLiveSstFilesSize);
  std::map<std::string, std::string> stats;
  if (db->GetMapProperty(rocksdb::DB::Properties::kDBStats, &stats)) {
    f.write_stall_micros = MapFigure(stats, "db.user_write_stall_micros");
  }
  for (rocksdb::ColumnFamilyHandle* family : families) {
    stats.clear();
    if (!db->GetMapProperty(family, rocksdb::DB::Properties::kCFStats, &stats)) continue;
    f.write_slowdowns += MapFigure(stats, "io_stalls.total_slowdown");
    f.write_stops += MapFigure(stats, "io_stalls.total_stop");
  }
  return f;
}

}  // namespace

StoreFigures Store::Figures() {
  StoreFigures f;
  f.journal = Read(rep_->journal.get(), rep_->journal_handles);
  f.state = Read(rep_->db.get(), rep_->handles);
  return f;
}

}  // namespace tierstream::state
