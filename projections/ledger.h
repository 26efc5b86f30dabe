// Ledger: the write path. Commands go in; durable events and rows come out.
//
// For each command, on the single writer thread: decide() against the latest
// State, seal and stage its events, evolve() State and stage the rows each event
// changed, all in the group's one WriteBatch; the caller hears back only after
// that batch is synced (GroupCommitter). At open, State is rebuilt by replaying
// the verified log; stored projections are rebuilt too when kProjectionVersion
// changed. Every open seeds the part of the built-in catalog the log lacks
// (all of it for an empty log).
//
// After a failed write (disk full, IO error) commands fail with 503
// ServiceUnavailable, reads keep answering, and the next commands reopen the
// database in place and replay State from it (GroupCommitter, Store::reopen()):
// writes come back without a restart once the disk has room again.
//
// Thread safety: submit()/execute()/reads from any thread. State is touched only
// by the writer thread (and by open() before it starts).
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "events/commands.h"
#include "events/state.h"
#include "storage/group_commit.h"
#include "storage/row_view.h"
#include "storage/store.h"

namespace sl {

struct CommandContext {
  Actor actor;
  std::string request_id;
  std::string access_key_secret;  // stored (in secrets, not the log) with RegisterAccount
};

struct Commit {
  std::uint64_t seq = 0;      // last event's seq, or the head for a no-op
  std::vector<Event> events;  // empty for a no-op
};

struct LedgerOptions {
  Limits limits;
  StoreOptions store;  // block cache size; tests inject IO failures through store.env
  std::function<void(std::uint64_t)> progress;  // replay progress at open
};

class Ledger {
 public:
  using Callback = std::function<void(Result<Commit>)>;

  // OK: an open ledger. 503 ServiceUnavailable: cannot open. 500 CorruptEvent: the
  // log fails verification (message names the first bad seq).
  static Result<std::unique_ptr<Ledger>> open(const std::string& dir, LedgerOptions options = {});
  ~Ledger();  // drains pending commands, closes the database

  // Queues a command; `done` runs on the writer thread once the outcome is
  // durable (or rejected). `done` must not block.
  void submit(Command command, CommandContext context, Callback done);
  // Blocking convenience over submit().
  Result<Commit> execute(Command command, CommandContext context = {});

  // Stop taking commands and drain (SIGTERM).
  void stop();

  // The last durable head.
  Head head() const { return committer_->head(); }
  // A view of the rows now, or as of a seq. 400 InvalidParameter.AsOf when beyond head;
  // 503 ServiceUnavailable when a reopen left the database closed. The view pins
  // the store (see RowView): do not hold it across execute().
  Result<std::unique_ptr<RowView>> view(std::optional<std::uint64_t> as_of_seq = std::nullopt) const;
  // The last seq whose time <= time_us (0 before the first event).
  Result<std::uint64_t> seq_at_time(std::int64_t time_us) const { return store_->seq_at_time(time_us); }

  // Access key -> (account id, secret); nullopt when unknown.
  std::optional<std::pair<std::string, std::string>> credentials(const std::string& access_key_id) const;

  // Runs after every durable group, on the writer thread (feed fan-out). Safe
  // while the writer runs: once this returns, no call to the old hook is in
  // flight, and every group it did not see is already in head().
  void set_on_committed(std::function<void(const std::vector<Event>&)> fn);

  const Store& store() const { return *store_; }
  const GroupCommitStats& stats() const { return committer_->stats(); }
  const Limits& limits() const { return options_.limits; }

 private:
  class Job;
  Ledger() = default;
  Status load_or_rebuild();
  Status seed_catalog();
  Result<Head> reload_state();  // after a reopen: State back to what is durable

  LedgerOptions options_;
  std::unique_ptr<Store> store_;
  State state_;  // writer thread only
  std::unique_ptr<GroupCommitter> committer_;
  std::mutex on_committed_mu_;  // the writer calls the hook under it
  std::function<void(const std::vector<Event>&)> on_committed_;  // GUARDED_BY(on_committed_mu_)
};

std::int64_t now_micros();

}  // namespace sl
