// RowView over hand-written hist versions: every as-of get and scan, at every
// seq, must equal a brute-force reading of the same versions. Rows have from 1
// to 40 versions so that scans cross both the walking and the seeking path,
// deletes included, and rows that are prefixes of each other sit side by side.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <random>

#include "storage/row_view.h"
#include "storage/store.h"

namespace sl {
namespace {

struct Version {
  std::uint64_t seq;
  std::optional<std::string> value;  // nullopt: deleted
};

class RowViewTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::TempDir() + "shareledger_row_view_" + std::to_string(::getpid());
    std::filesystem::remove_all(dir_);
    auto opened = Store::open(dir_, OpenMode::kReadWrite);
    ASSERT_TRUE(opened) << opened.error().message;
    store_ = std::move(*opened);
    // Keeps the sorted runs the flushes below make: the hist family's own
    // compaction would merge them (storage/store.cc).
    ASSERT_TRUE(store_->db()->SetOptions(store_->hist(), {{"disable_auto_compactions", "true"}}).ok());
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  void write(const std::string& row, std::uint64_t seq, const std::optional<std::string>& value, bool flush) {
    rocksdb::WriteBatch batch;
    batch.Put(store_->hist(), hist_key(row, seq), value ? "P" + *value : std::string("D"));
    ASSERT_TRUE(store_->write(batch, false).ok());
    rows_[row].push_back({seq, value});
    if (flush) store_->db()->Flush(rocksdb::FlushOptions(), store_->hist());
  }

  std::optional<std::string> oracle(const std::string& row, std::uint64_t seq) const {
    std::optional<std::string> out;
    for (const Version& v : rows_.at(row)) {
      if (v.seq <= seq) out = v.value;
    }
    return out;
  }

  std::string dir_;
  std::unique_ptr<Store> store_;
  std::map<std::string, std::vector<Version>> rows_;
};

TEST_F(RowViewTest, AsOfGetAndScanMatchEveryVersionAtEverySeq) {
  const std::uint64_t seed = 20261201;
  std::printf("seed %llu\n", static_cast<unsigned long long>(seed));
  std::mt19937_64 rng(seed);
  const std::vector<std::string> names = {"grant/img-a/1", "grant/img-a/10", "grant/img-a/100", "grant/img-a/2",
                                          "grant/img-b/1", "img/img-a",      "img/img-ab"};
  const std::vector<int> versions = {1, 3, 8, 9, 40, 17, 2};
  std::vector<std::pair<std::string, int>> left;
  for (std::size_t i = 0; i < names.size(); ++i) left.emplace_back(names[i], versions[i]);
  std::uint64_t seq = 0;
  while (!left.empty()) {
    std::size_t i = rng() % left.size();
    ++seq;
    std::optional<std::string> value;
    if (rng() % 4 != 0) value = "v" + std::to_string(seq);
    // Flushing now and then spreads a row's versions over several sorted runs.
    write(left[i].first, seq, value, rng() % 16 == 0);
    if (--left[i].second == 0) left.erase(left.begin() + static_cast<std::ptrdiff_t>(i));
  }
  const std::uint64_t head = seq;
  for (std::uint64_t at = 0; at <= head + 1; ++at) {
    auto view = rows_as_of(*store_, at);
    for (const auto& [row, _] : rows_) EXPECT_EQ(view->get(row), oracle(row, at)) << row << " at " << at;
    for (const std::string prefix : {"grant/img-a/", "grant/img-a/1", "grant/", "img/img-a", ""}) {
      std::vector<std::pair<std::string, std::string>> got, want;
      view->scan(prefix, [&](std::string_view k, std::string_view v) {
        got.emplace_back(k, v);
        return true;
      });
      for (const auto& [row, _] : rows_) {
        auto v = oracle(row, at);
        if (row.starts_with(prefix) && v) want.emplace_back(row, *v);
      }
      EXPECT_EQ(got, want) << "prefix '" << prefix << "' at " << at;
    }
  }
}

TEST_F(RowViewTest, ScanStopsWhenTheCallbackSaysSo) {
  for (std::uint64_t s = 1; s <= 30; ++s) write("grant/x/" + std::to_string(s % 3), s, "v", false);
  auto view = rows_as_of(*store_, 30);
  int seen = 0;
  view->scan("grant/x/", [&](std::string_view, std::string_view) { return ++seen < 2; });
  EXPECT_EQ(seen, 2);
}

}  // namespace
}  // namespace sl
