#include "storage/row_view.h"

namespace sl {
namespace {

// The least key above every key starting with `prefix` ("" when there is none,
// i.e. the prefix is empty or all 0xff). As an iterator's upper bound it keeps
// a prefix scan from loading, in every sorted run, the block after its last key.
std::string prefix_end(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty() && static_cast<unsigned char>(end.back()) == 0xff) end.pop_back();
  if (!end.empty()) end.back() = static_cast<char>(static_cast<unsigned char>(end.back()) + 1);
  return end;
}

// Iterator over `cf` for keys starting with `prefix`; `bound` must outlive it.
std::unique_ptr<rocksdb::Iterator> prefix_iterator(const Store& store, rocksdb::ColumnFamilyHandle* cf,
                                                   std::string_view prefix, const rocksdb::Snapshot* snapshot,
                                                   std::string& end, rocksdb::Slice& bound) {
  rocksdb::ReadOptions ro;
  ro.snapshot = snapshot;
  ro.total_order_seek = true;  // `prefix` is not a whole hist row (see store.h)
  end = prefix_end(prefix);
  if (!end.empty()) {
    bound = rocksdb::Slice(end);
    ro.iterate_upper_bound = &bound;
  }
  return std::unique_ptr<rocksdb::Iterator>(store.db()->NewIterator(ro, cf));
}

class CurrentRows final : public RowView {
 public:
  explicit CurrentRows(const Store& store) : pin_(store), store_(store), snapshot_(store.snapshot()) {
    auto h = store.head(snapshot_);
    seq_ = h ? h->seq : 0;
  }
  ~CurrentRows() override { store_.release_snapshot(snapshot_); }

  std::optional<std::string> get(std::string_view key) const override {
    auto v = store_.get(store_.proj(), key, snapshot_);
    return v ? *v : std::nullopt;
  }

  void scan(std::string_view prefix,
            const std::function<bool(std::string_view, std::string_view)>& fn) const override {
    std::string end;
    rocksdb::Slice bound;
    auto it = prefix_iterator(store_, store_.proj(), prefix, snapshot_, end, bound);
    rocksdb::Slice p(prefix.data(), prefix.size());
    for (it->Seek(p); it->Valid() && it->key().starts_with(p); it->Next()) {
      if (!fn(std::string_view(it->key().data(), it->key().size()),
              std::string_view(it->value().data(), it->value().size()))) {
        return;
      }
    }
  }

  std::uint64_t seq() const override { return seq_; }

 private:
  Store::Pin pin_;  // first: the database stays open until the rest is gone
  const Store& store_;
  const rocksdb::Snapshot* snapshot_;
  std::uint64_t seq_ = 0;
};

class RowsAsOf final : public RowView {
 public:
  RowsAsOf(const Store& store, std::uint64_t seq) : pin_(store), store_(store), seq_(seq) {}

  std::optional<std::string> get(std::string_view key) const override {
    // One iterator serves every get of this view: creating one costs more than
    // the seek itself, and more so the more sorted runs the family has. Its
    // implicit snapshot is taken at the first get; every version <= seq_ is
    // already written by then (seq_ <= head), so answers are unchanged.
    if (!get_it_) get_it_.reset(store_.db()->NewIterator(rocksdb::ReadOptions(), store_.hist()));
    rocksdb::Iterator* it = get_it_.get();
    std::string target = hist_key(key, seq_);
    it->SeekForPrev(target);
    if (!it->Valid()) return std::nullopt;
    rocksdb::Slice k = it->key();
    // Same row iff the found key is `key` + '\0' + 8 bytes.
    if (k.size() != key.size() + 9 || std::string_view(k.data(), key.size()) != key || k[key.size()] != '\0') {
      return std::nullopt;
    }
    return present(it->value());
  }

  // Visits each row under `prefix` once, with its latest version <= seq_.
  // A row's versions are walked with Next() while few; past kWalk of them the
  // answer is fetched with one SeekForPrev and the rest skipped with one Seek,
  // so a row's cost is bounded whatever its history length.
  void scan(std::string_view prefix,
            const std::function<bool(std::string_view, std::string_view)>& fn) const override {
    constexpr int kWalk = 8;
    std::string end;
    rocksdb::Slice bound;
    auto it = prefix_iterator(store_, store_.hist(), prefix, nullptr, end, bound);
    rocksdb::Slice p(prefix.data(), prefix.size());
    std::string row;     // row key of the group being read
    std::string latest;  // its latest version <= seq_, when `has_latest`
    bool has_latest = false;
    bool decided = false;  // a version > seq_ was seen: later ones are too
    int walked = 0;
    auto keep = [&](const rocksdb::Slice& v) {
      // Reuses latest's buffer: only the last version <= seq_ of a row is kept.
      has_latest = v.size() > 0 && v[0] == 'P';
      if (has_latest) latest.assign(v.data() + 1, v.size() - 1);
    };
    auto flush = [&]() -> bool {
      bool go_on = true;
      if (!row.empty() && has_latest) go_on = fn(row, latest);
      has_latest = false;
      return go_on;
    };
    it->Seek(p);
    while (it->Valid() && it->key().starts_with(p)) {
      rocksdb::Slice k = it->key();
      if (k.size() < 9) {
        it->Next();
        continue;
      }
      std::string_view key(k.data(), k.size() - 9);
      std::uint64_t version = read_be64(std::string_view(k.data() + k.size() - 8, 8));
      if (key != row) {
        if (!flush()) return;
        row.assign(key);
        decided = false;
        walked = 0;
      }
      if (decided) {
        // skip
      } else if (version <= seq_) {
        keep(it->value());
      } else {
        decided = true;
      }
      if (++walked < kWalk) {
        it->Next();
        continue;
      }
      if (!decided) {
        it->SeekForPrev(hist_key(row, seq_));  // lands on a version of `row`: one <= seq_ was seen
        keep(it->value());
      }
      it->Seek(row + '\x01');  // first key after every version of `row` ('\0' < '\x01' < any row byte)
      walked = 0;
      decided = true;
    }
    flush();
  }

  std::uint64_t seq() const override { return seq_; }

 private:
  static std::optional<std::string> present(const rocksdb::Slice& v) {
    if (v.size() == 0 || v[0] != 'P') return std::nullopt;
    return std::string(v.data() + 1, v.size() - 1);
  }

  Store::Pin pin_;  // first: the database stays open until the rest is gone
  const Store& store_;
  std::uint64_t seq_;
  // get()'s iterator (scan() uses its own: fn may call get() mid-scan).
  mutable std::unique_ptr<rocksdb::Iterator> get_it_;
};

}  // namespace

// A view pins the store, so it is open for the view's whole life if it is open
// once the view exists.
std::unique_ptr<RowView> current_rows(const Store& store) {
  auto view = std::make_unique<CurrentRows>(store);
  return store.is_open() ? std::move(view) : nullptr;
}

std::unique_ptr<RowView> rows_as_of(const Store& store, std::uint64_t seq) {
  auto view = std::make_unique<RowsAsOf>(store, seq);
  return store.is_open() ? std::move(view) : nullptr;
}

}  // namespace sl
