// Golden values of the hashes that place and key persisted data. A data
// dir's bytes depend on them: users are placed by ShardOf (Hash64 modulo
// the shard count, which the data dir pins), the store's user index is keyed
// by ShardState::UserHash, and seen blobs and id runs hold HashId128 of event
// ids. A change of hash function or seed would silently re-home every user
// and forget every id of an existing data dir: it must break this test
// first (and then needs a data dir format change, not a new expected value).
#include <gtest/gtest.h>

#include <cstdint>
#include <string_view>

#include "common/hash.h"
#include "state/shard_state.h"

namespace tierstream::state {
namespace {

struct Golden {
  std::string_view user_id;
  uint64_t hash64;
  uint32_t shard_of_8, shard_of_3;
};

constexpr Golden kGolden[] = {
    {"", 0x2d06800538d394c2ull, 2, 1},  // XXH3-64 of the empty string
    {"u1", 0x9dc02546854d5df1ull, 1, 1},     {"alice", 0x4da10dd61a0116b0ull, 0, 0},
    {"用户42", 0x95c33615fad0f67dull, 5, 0}, {"user-000000001", 0xd6a3f9b6c75f6cd9ull, 1, 2},
};

TEST(Placement, UsersGoToTheSameShardAsEver) {
  for (const Golden& g : kGolden) {
    EXPECT_EQ(Hash64(g.user_id), g.hash64) << g.user_id;
    EXPECT_EQ(ShardOf(g.user_id, 8), g.shard_of_8) << g.user_id;
    EXPECT_EQ(ShardOf(g.user_id, 3), g.shard_of_3) << g.user_id;
    EXPECT_EQ(ShardOf(g.user_id, 1), 0u);
  }
}

TEST(Placement, TheUserIndexKeysUsersByTheRoutingHash) {
  for (const Golden& g : kGolden) EXPECT_EQ(ShardState::UserHash(g.user_id), g.hash64);
}

TEST(Placement, EventIdHashesAreTheSameAsEver) {
  // Seeds 0 and 1: the pipeline's own events and referral credits.
  const Hash128 event = HashId128("alice", 0);
  EXPECT_EQ(event.lo, 0xc9a1342ad0e35dd2ull);
  EXPECT_EQ(event.hi, 0x48bb949a3dd26afaull);
  const Hash128 credit = HashId128("alice", 1);
  EXPECT_EQ(credit.lo, 0xa80ee331b6c76da5ull);
  EXPECT_EQ(credit.hi, 0xdb94300b7dbd1d61ull);
  const Hash128 unicode = HashId128("用户42", 0);
  EXPECT_EQ(unicode.lo, 0xd5f6434c60ac23a9ull);
  EXPECT_EQ(unicode.hi, 0xf7a1831ac3307137ull);
}

}  // namespace
}  // namespace tierstream::state
