#include "projections/ledger.h"

#include <chrono>
#include <future>

#include "events/catalog.h"
#include "events/decide.h"
#include "projections/replay.h"
#include "projections/rows.h"

namespace sl {
namespace {

constexpr std::string_view kVersionKey = "proj_version";
constexpr std::size_t kRebuildChunkBytes = 32 << 20;

}  // namespace

std::int64_t now_micros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

class Ledger::Job final : public WriteJob {
 public:
  Job(Ledger& ledger, Command command, CommandContext context, Callback done)
      : ledger_(ledger), command_(std::move(command)), context_(std::move(context)), done_(std::move(done)) {}

  void stage(LogBatch& batch) override {
    auto decided = decide(ledger_.state_, command_, ledger_.options_.limits);
    if (!decided) {
      rejected_ = decided.error();
      return;
    }
    for (Event& e : *decided) {
      e.actor = context_.actor;
      e.request_id = context_.request_id;
      const Event& sealed = batch.append(std::move(e), now_micros());
      evolve(ledger_.state_, sealed);
      stage_dirty_rows(ledger_.state_, batch);
      commit_.events.push_back(sealed);
    }
    if (auto* reg = std::get_if<RegisterAccount>(&command_); reg && !context_.access_key_secret.empty()) {
      batch.put_secret(reg->access_key_id, context_.access_key_secret);
    }
    commit_.seq = batch.head().seq;
  }

  void finish(const Status& durable) override {
    if (rejected_) return done_(*rejected_);
    if (!durable) return done_(durable.error());
    done_(std::move(commit_));
  }

 private:
  Ledger& ledger_;
  Command command_;
  CommandContext context_;
  Callback done_;
  std::optional<Error> rejected_;
  Commit commit_;
};

Result<std::unique_ptr<Ledger>> Ledger::open(const std::string& dir, LedgerOptions options) {
  auto store = Store::open(dir, OpenMode::kReadWrite, options.store);
  if (!store) return store.error();
  std::unique_ptr<Ledger> ledger(new Ledger());
  ledger->options_ = std::move(options);
  ledger->store_ = std::move(*store);
  if (auto s = ledger->load_or_rebuild(); !s) return s.error();
  GroupCommitter::Hooks hooks;
  Ledger* self = ledger.get();
  hooks.reload = [self] { return self->reload_state(); };
  hooks.on_committed = [self](const std::vector<Event>& events) {
    std::lock_guard lock(self->on_committed_mu_);
    if (self->on_committed_) self->on_committed_(events);
  };
  Head head{ledger->state_.head_seq, ledger->state_.head_time_us, ledger->state_.head_hash};
  ledger->committer_ = std::make_unique<GroupCommitter>(*ledger->store_, head, std::move(hooks));
  // Seeding is idempotent (a present image is a no-op), so it runs at every
  // open: a crash between two seed writes must not leave the catalog short.
  if (auto s = ledger->seed_catalog(); !s) return s.error();
  return ledger;
}

Ledger::~Ledger() { stop(); }

void Ledger::stop() {
  if (committer_) committer_->stop();
}

Status Ledger::load_or_rebuild() {
  auto version = store_->get(store_->meta(), kVersionKey);
  if (!version) return version.error();
  auto head = store_->head();
  if (!head) return head.error();
  bool current = (*version && **version == kProjectionVersion) || head->seq == 0;
  ScanOptions scan;
  scan.progress = options_.progress;
  if (current) {
    auto state = replay(*store_, scan);
    if (!state) return state.error();
    state_ = std::move(*state);
  } else {
    // Rows of an older layout: drop them and derive every version again.
    if (auto s = store_->clear_projections(); !s) return s;
    std::unique_ptr<LogBatch> batch = std::make_unique<LogBatch>(*store_, Head{});
    Status written = Ok{};
    auto state = replay(*store_, scan, [&](const State& s, const Event& e) {
      batch->reindex(e);
      stage_dirty_rows(s, *batch);
      if (batch->bytes() > kRebuildChunkBytes && written) {
        written = store_->write(batch->batch(), false);
        batch = std::make_unique<LogBatch>(*store_, batch->head());
      }
    });
    if (!state) return state.error();
    if (!written) return written;
    batch->record_head();
    if (auto s = store_->write(batch->batch(), true); !s) return s;
    state_ = std::move(*state);
  }
  rocksdb::WriteBatch meta;
  meta.Put(store_->meta(), rocksdb::Slice(kVersionKey.data(), kVersionKey.size()),
           rocksdb::Slice(kProjectionVersion.data(), kProjectionVersion.size()));
  return store_->write(meta, true);
}

Status Ledger::seed_catalog() {
  for (auto& seed : builtin_catalog(options_.limits.regions)) {
    auto r = execute(seed, CommandContext{{}, "catalog", ""});
    if (!r) return r.error();
  }
  return Ok{};
}

Result<Head> Ledger::reload_state() {
  auto state = replay(*store_, ScanOptions{});
  if (!state) return state.error();
  state_ = std::move(*state);
  return Head{state_.head_seq, state_.head_time_us, state_.head_hash};
}

void Ledger::submit(Command command, CommandContext context, Callback done) {
  committer_->submit(std::make_unique<Job>(*this, std::move(command), std::move(context), std::move(done)));
}

Result<Commit> Ledger::execute(Command command, CommandContext context) {
  std::promise<Result<Commit>> promise;
  auto future = promise.get_future();
  submit(std::move(command), std::move(context), [&promise](Result<Commit> r) { promise.set_value(std::move(r)); });
  return future.get();
}

Result<std::unique_ptr<RowView>> Ledger::view(std::optional<std::uint64_t> as_of_seq) const {
  if (as_of_seq && *as_of_seq > head().seq) {
    return make_error(400, "InvalidParameter.AsOf",
                      "as_of_seq " + std::to_string(*as_of_seq) + " is beyond the head " + std::to_string(head().seq));
  }
  auto view = as_of_seq ? rows_as_of(*store_, *as_of_seq) : current_rows(*store_);
  if (!view) return make_error(503, "ServiceUnavailable", "storage: the database is not open (reopen failed)");
  return view;
}

std::optional<std::pair<std::string, std::string>> Ledger::credentials(const std::string& access_key_id) const {
  Store::Pin pin(*store_);  // before the family handles are read
  auto account = store_->get(store_->proj(), "akey/" + access_key_id);
  auto secret = store_->get(store_->secrets(), access_key_id);
  if (!account || !*account || !secret || !*secret) return std::nullopt;
  return std::pair{**account, **secret};
}

void Ledger::set_on_committed(std::function<void(const std::vector<Event>&)> fn) {
  std::lock_guard lock(on_committed_mu_);
  on_committed_ = std::move(fn);
}

}  // namespace sl
