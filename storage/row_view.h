// RowView: read access to projection rows, either as they are now or as they
// were right after event `seq`. Query code is written once against this
// interface; point-in-time reads differ only in which view they get.
//
// Current view: the proj family under one RocksDB snapshot, so a multi-row read
// is consistent with one head. As-of view: SeekForPrev on versioned hist keys;
// a get is one seek whatever the history length, and a scan costs a bounded
// number of steps per row under its prefix (rows with long histories are
// crossed with two seeks instead of walked).
// Thread safety: a view is used by one thread at a time; views are cheap. A
// view holds a Store::Pin for its whole life: a reopen of the store waits for
// it (up to a bound), so do not keep views across a write you wait for.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "storage/store.h"

namespace sl {

class RowView {
 public:
  virtual ~RowView() = default;
  // The row's value, or nullopt when absent (at this view's point).
  virtual std::optional<std::string> get(std::string_view key) const = 0;
  // fn(key, value) for present rows whose key starts with prefix, in key order; stop when fn returns false.
  virtual void scan(std::string_view prefix,
                    const std::function<bool(std::string_view key, std::string_view value)>& fn) const = 0;
  // The seq this view reflects.
  virtual std::uint64_t seq() const = 0;
};

// nullptr when the store is closed (a failed reopen, see Store::reopen()).
// REQUIRES: store outlives the view.
std::unique_ptr<RowView> current_rows(const Store& store);
// REQUIRES: seq <= head. seq 0 is the empty state.
std::unique_ptr<RowView> rows_as_of(const Store& store, std::uint64_t seq);

}  // namespace sl
