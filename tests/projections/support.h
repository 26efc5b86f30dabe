// Helpers shared by the projections tests.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <rocksdb/db.h>

#include "events/result.h"
#include "projections/rows.h"
#include "storage/row_view.h"
#include "storage/store.h"

namespace sl::test {

// An unsigned number from the environment (a seed, a step count), or `fallback`
// when unset: randomized tests run a fixed seed unless told otherwise.
inline std::uint64_t env_number(const char* name, std::uint64_t fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::stoull(v) : fallback;
}

inline std::string describe(const Error& e) { return std::to_string(e.http) + " " + e.code + ": " + e.message; }

// A directory name under the test temp dir, unique within the process, removed if present.
inline std::string fresh_dir(const std::string& name) {
  static std::atomic<int> counter{0};
  std::string dir = ::testing::TempDir() + "shareledger_" + name + "_" + std::to_string(::getpid()) + "_" +
                    std::to_string(counter++);
  std::filesystem::remove_all(dir);
  return dir;
}

// Every key/value of one column family, in key order.
inline Rows scan_family(const Store& store, rocksdb::ColumnFamilyHandle* cf) {
  Rows out;
  rocksdb::ReadOptions whole_family;
  whole_family.total_order_seek = true;
  std::unique_ptr<rocksdb::Iterator> it(store.db()->NewIterator(whole_family, cf));
  for (it->SeekToFirst(); it->Valid(); it->Next()) out.emplace_back(it->key().ToString(), it->value().ToString());
  EXPECT_TRUE(it->status().ok()) << it->status().ToString();
  return out;
}

// Every row a view holds, in key order.
inline Rows view_rows(const RowView& view) {
  Rows out;
  view.scan("", [&](std::string_view k, std::string_view v) {
    out.emplace_back(std::string(k), std::string(v));
    return true;
  });
  return out;
}

// Rows held in memory (from all_rows) behind the RowView interface, so the
// query code can run over a replayed State: the expected side of a comparison.
class MapRows final : public RowView {
 public:
  MapRows(Rows rows, std::uint64_t seq) : rows_(std::move(rows)), seq_(seq) {}

  std::optional<std::string> get(std::string_view key) const override {
    auto it = lower_bound(key);
    if (it == rows_.end() || it->first != key) return std::nullopt;
    return it->second;
  }
  void scan(std::string_view prefix,
            const std::function<bool(std::string_view, std::string_view)>& fn) const override {
    for (auto it = lower_bound(prefix); it != rows_.end() && it->first.starts_with(prefix); ++it) {
      if (!fn(it->first, it->second)) return;
    }
  }
  std::uint64_t seq() const override { return seq_; }
  const Rows& rows() const { return rows_; }

 private:
  Rows::const_iterator lower_bound(std::string_view key) const {
    return std::lower_bound(rows_.begin(), rows_.end(), key,
                            [](const auto& row, std::string_view k) { return row.first < k; });
  }

  Rows rows_;
  std::uint64_t seq_;
};

}  // namespace sl::test
