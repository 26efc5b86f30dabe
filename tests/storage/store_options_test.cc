// StoreOptions reach RocksDB: the block cache is the size asked for
// (`shareledger serve --block-cache-mb`), 1 GiB by default.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "storage/store.h"

namespace sl {
namespace {

std::uint64_t BlockCacheCapacity(const StoreOptions& options) {
  const std::string dir = testing::TempDir() + "shareledger_store_options_" + std::to_string(::getpid());
  std::filesystem::remove_all(dir);
  std::uint64_t capacity = 0;
  {
    auto store = Store::open(dir, OpenMode::kReadWrite, options);
    EXPECT_TRUE(store) << (store ? "" : store.error().message);
    if (store) {
      EXPECT_TRUE((*store)->db()->GetIntProperty(rocksdb::DB::Properties::kBlockCacheCapacity, &capacity));
    }
  }
  std::filesystem::remove_all(dir);
  return capacity;
}

TEST(StoreOptionsTest, TheBlockCacheHasTheSizeAskedFor) {
  EXPECT_EQ(BlockCacheCapacity(StoreOptions{}), std::uint64_t{1} << 30);
  StoreOptions small;
  small.block_cache_bytes = 64 << 20;
  EXPECT_EQ(BlockCacheCapacity(small), std::uint64_t{64} << 20);
}

}  // namespace
}  // namespace sl
