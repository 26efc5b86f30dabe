// Reading the log back: chain verification and replay into State.
//
// scan_verified() is the one place that checks the log: dense seqs from 1, each
// event's hash over its stored bytes, the prev_hash link, and the schema. The
// audit tool, the ledger's open and replay all use it. It reads and verifies
// in batches on one thread per core (the caller's included, while it waits);
// fn is still called in seq order, on the caller's thread.
// Thread safety: reads only; safe beside a running writer (it sees a prefix).
#pragma once

#include <functional>
#include <limits>
#include <optional>
#include <string>

#include "events/state.h"
#include "storage/store.h"

namespace sl {

struct ScanOptions {
  std::uint64_t to_seq = std::numeric_limits<std::uint64_t>::max();
  // Called every `progress_every` events with the seq reached.
  std::function<void(std::uint64_t)> progress;
  std::uint64_t progress_every = 100000;
  // Skip schema decoding (fn may then read only the Event's seq and hash).
  bool hash_only = false;
};

// Calls fn(event, stored bytes) for seq 1..to_seq in order. fn returns false to stop.
// OK: every visited event verified. 500 CorruptEvent: message "seq N: <what>" for the first bad one.
Status scan_verified(const Store& store, const ScanOptions& options,
                     const std::function<bool(const Event&, std::string_view)>& fn);

// What checking the log's chain found.
struct ChainCheck {
  std::uint64_t checked = 0;     // the last seq that passed every check
  std::string head_hash;         // its hash; the genesis hash before seq 1
  std::optional<Error> problem;  // the first failure
  std::uint64_t bad_seq = 0;     // the event it names (checked + 1), 0 for a read error
};

// Checks seq 1..options.to_seq like scan_verified(); a bounded to_seq that the
// log does not reach is a problem too. keep_going() runs before each event;
// when it says stop, the check ends there with no problem.
ChainCheck check_chain(const Store& store, const ScanOptions& options,
                       const std::function<bool()>& keep_going = nullptr);

// Folds events 1..to_seq into a fresh State; after_each(state, event) runs after each evolve
// (state.dirty is kept up to date only when there is an after_each to read it).
Result<State> replay(const Store& store, const ScanOptions& options,
                     const std::function<void(const State&, const Event&)>& after_each = nullptr);

}  // namespace sl
