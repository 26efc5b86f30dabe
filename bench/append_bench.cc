// append_bench: durable appends per second through Ledger::execute(), next to
// raw RocksDB doing comparable durable work, measured in the same run.
//
// Cases, for each --threads count N (each case on a fresh directory):
//   rocksdb_raw/sync/tN : N threads; each op is one WriteBatch of an event put
//                         (--value-size bytes, key be64(seq)) plus
//                         --projection-puts random-key "projection" puts
//                         (~45 B key, ~95 B value), written with sync=true.
//                         Concurrent writers share fsyncs through RocksDB's
//                         own write-group join.
//   append/sync/tN      : N threads; each op is Ledger::execute() of a command
//                         that appends exactly one event and rewrites a few
//                         projection rows. --command=share toggles one
//                         recipient on/off an image the thread's owner
//                         account owns (ModifyImageSharePermission:
//                         ImageShared / ImageUnshared); --command=role toggles
//                         SetEncryptShareRole on the thread's own account.
//                         Accounts, instances and images are created in an
//                         untimed setup phase.
// The append line's ratio is its ops/sec over rocksdb_raw's at the same N.
//
// Example:
//   append_bench --seconds=5 --threads=1,8,64
//   rocksdb_raw/sync/t64  :     37.0 micros/op    27000 ops/sec ... p99 5.0 ms
//   append/sync/t64       :     50.0 micros/op    20000 ops/sec ...; 0.74x rocksdb_raw
#include <CLI/CLI.hpp>
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/statistics.h>
#include <rocksdb/write_batch.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "api/ids.h"
#include "bench/bench_common.h"
#include "events/catalog.h"
#include "projections/ledger.h"
#include "storage/store.h"

namespace {

using Clock = std::chrono::steady_clock;
using sl::bench::CaseResult;

constexpr const char* kRegion = "cn-hangzhou";

struct Flags {
  double seconds = 5;
  std::vector<int> threads = {1, 8, 64};
  std::string dir;
  bool json = false;
  std::vector<std::string> benchmarks = {"rocksdb_raw", "append"};
  std::string command = "share";
  int value_size = 400;
  int projection_puts = 3;
  std::uint64_t seed = 301;
};

// Runs `body(thread_index, latencies)` on `n` threads from a common start for
// `seconds`; body loops while `stop` is false and appends one latency (us) per
// completed op. Returns the window, ops, and process CPU over the window.
struct RunOutcome {
  double seconds = 0;
  double cpu_seconds = 0;
  std::vector<std::uint32_t> micros;  // every op's latency
  std::uint64_t errors = 0;
  std::string first_error;
};

template <class Body>
RunOutcome run_threads(int n, double seconds, Body body) {
  std::atomic<bool> go{false}, stop{false};
  std::atomic<int> ready{0};
  std::vector<std::vector<std::uint32_t>> lat(n);
  std::vector<std::uint64_t> errors(n, 0);
  std::vector<std::string> first_error(n);
  std::vector<std::thread> threads;
  for (int t = 0; t < n; ++t) {
    lat[t].reserve(1 << 16);
    threads.emplace_back([&, t] {
      ready++;
      while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
      body(t, stop, lat[t], errors[t], first_error[t]);
    });
  }
  while (ready.load() < n) std::this_thread::yield();
  double cpu0 = sl::bench::cpu_seconds_process();
  auto t0 = Clock::now();
  go.store(true, std::memory_order_release);
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop.store(true);
  for (auto& th : threads) th.join();
  RunOutcome out;
  out.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  out.cpu_seconds = sl::bench::cpu_seconds_process() - cpu0;
  for (int t = 0; t < n; ++t) {
    out.micros.insert(out.micros.end(), lat[t].begin(), lat[t].end());
    out.errors += errors[t];
    if (out.first_error.empty()) out.first_error = first_error[t];
  }
  return out;
}

std::uint32_t micros_since(Clock::time_point t0) {
  return static_cast<std::uint32_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0).count());
}

std::string random_chars(std::mt19937_64& rng, std::string_view alphabet, int n) {
  std::string s;
  s.reserve(n);
  for (int i = 0; i < n; ++i) s += alphabet[rng() % alphabet.size()];
  return s;
}

constexpr std::string_view kLower = "0123456789abcdefghijklmnopqrstuvwxyz";
constexpr std::string_view kDigits = "0123456789";

// ---- raw RocksDB baseline ----------------------------------------------------

CaseResult run_raw(const Flags& f, int threads, const std::string& dir) {
  // Same DB-wide options as sl::Store (IncreaseParallelism(2), default
  // memtables), two column families: the log and the projection rows.
  rocksdb::Options options;
  options.create_if_missing = true;
  options.create_missing_column_families = true;
  options.IncreaseParallelism(2);
  // Tickers only (no timers): how many ops share one WAL sync, and WAL bytes.
  options.statistics = rocksdb::CreateDBStatistics();
  options.statistics->set_stats_level(rocksdb::StatsLevel::kExceptTimers);
  std::vector<rocksdb::ColumnFamilyDescriptor> cfs = {
      {rocksdb::kDefaultColumnFamilyName, rocksdb::ColumnFamilyOptions(options)},
      {"events", rocksdb::ColumnFamilyOptions(options)},
      {"proj", rocksdb::ColumnFamilyOptions(options)}};
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(options, dir, cfs, &handles, &raw);
  if (!s.ok()) {
    std::fprintf(stderr, "rocksdb_raw: open %s: %s\n", dir.c_str(), s.ToString().c_str());
    std::exit(2);
  }
  std::unique_ptr<rocksdb::DB> db(raw);
  rocksdb::ColumnFamilyHandle* events = handles[1];
  rocksdb::ColumnFamilyHandle* proj = handles[2];
  std::atomic<std::uint64_t> next_seq{0};

  RunOutcome run = run_threads(threads, f.seconds, [&](int t, std::atomic<bool>& stop,
                                                       std::vector<std::uint32_t>& lat, std::uint64_t& errors,
                                                       std::string& first_error) {
    std::mt19937_64 rng(f.seed + static_cast<std::uint64_t>(t));
    // Per-thread pools so the timed loop only picks: 4096 projection keys
    // (grant-shaped) and a random event body.
    std::vector<std::string> keys;
    for (int i = 0; i < 4096; ++i) {
      keys.push_back("grant/m-" + random_chars(rng, kLower, 20) + "/" + random_chars(rng, kDigits, 16));
    }
    std::string row_value = "{\"account_id\":\"" + random_chars(rng, kDigits, 16) +
                            "\",\"sources\":{\"account\":{\"seq\":123456,\"time\":1700000000000000}}}";
    std::string event = random_chars(rng, kLower, f.value_size);
    rocksdb::WriteOptions sync;
    sync.sync = true;
    while (!stop.load(std::memory_order_relaxed)) {
      auto t0 = Clock::now();
      std::uint64_t seq = next_seq.fetch_add(1) + 1;
      std::string key = sl::be64(seq);
      std::memcpy(event.data(), key.data(), std::min<std::size_t>(8, event.size()));  // not all-identical bodies
      rocksdb::WriteBatch batch;
      batch.Put(events, key, event);
      for (int p = 0; p < f.projection_puts; ++p) batch.Put(proj, keys[rng() % keys.size()], row_value);
      rocksdb::Status ws = db->Write(sync, &batch);
      if (!ws.ok()) {
        if (errors++ == 0) first_error = ws.ToString();
        continue;
      }
      lat.push_back(micros_since(t0));
    }
  });
  const double syncs = static_cast<double>(options.statistics->getTickerCount(rocksdb::WAL_FILE_SYNCED));
  const double wal_bytes = static_cast<double>(options.statistics->getTickerCount(rocksdb::WAL_FILE_BYTES));
  for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
  db.reset();
  CaseResult r = sl::bench::case_from_run("rocksdb_raw/sync/t" + std::to_string(threads), run);
  const double ops = static_cast<double>(r.ops);
  const double ops_per_sync = syncs > 0 ? ops / syncs : 0;
  const double cycle_us = syncs > 0 ? run.seconds * 1e6 / syncs : 0;
  const double wal_per_op = ops > 0 ? wal_bytes / ops : 0;
  r.extra["event_bytes"] = f.value_size;
  r.extra["puts_per_op"] = 1 + f.projection_puts;
  r.extra["ops_per_wal_sync"] = ops_per_sync;
  r.extra["us_per_wal_sync_cycle"] = cycle_us;
  r.extra["wal_bytes_per_op"] = wal_per_op;
  char note[160];
  std::snprintf(note, sizeof note, "%.1f ops/WAL sync, one sync every %.0f us, %.0f WAL B/op, %d keys/op", ops_per_sync,
                cycle_us, wal_per_op, 1 + f.projection_puts);
  r.note = note;
  if (!run.first_error.empty()) r.note += "; first error: " + run.first_error;
  return r;
}

// ---- shareledger -------------------------------------------------------------

std::string describe(const sl::Error& e) { return std::to_string(e.http) + " " + e.code + ": " + e.message; }

// One writer thread's fixtures.
struct Writer {
  std::string owner, access_key, recipient, image;
};

std::string system_image(const std::string& region) {
  for (const auto& seed : sl::builtin_catalog(sl::Limits{}.regions)) {
    if (seed.region == region && seed.kind == "system") return seed.image_id;
  }
  return "";
}

CaseResult run_ledger(const Flags& f, int threads, const std::string& dir, double raw_rate) {
  auto opened = sl::Ledger::open(dir);
  if (!opened) {
    std::fprintf(stderr, "append: open %s: %s\n", dir.c_str(), describe(opened.error()).c_str());
    std::exit(2);
  }
  std::unique_ptr<sl::Ledger> ledger = std::move(*opened);
  auto must = [&](sl::Command c, sl::CommandContext ctx = {}) {
    auto r = ledger->execute(std::move(c), std::move(ctx));
    if (!r) {
      std::fprintf(stderr, "append: setup failed: %s\n", describe(r.error()).c_str());
      std::exit(2);
    }
  };

  // Setup (untimed): per thread an owner with a custom image and a recipient.
  std::mt19937_64 rng(f.seed);
  auto account_id = [&] { return std::string(1, "123456789"[rng() % 9]) + random_chars(rng, kDigits, 15); };
  const std::string sys = system_image(kRegion);
  std::vector<Writer> writers(threads);
  for (Writer& w : writers) {
    w.owner = account_id();
    w.access_key = "LTAI" + random_chars(rng, "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", 20);
    w.recipient = account_id();
    must(sl::RegisterAccount{w.owner, "cn", w.access_key}, sl::CommandContext{{}, "setup", "secret"});
    must(sl::RegisterAccount{w.recipient, "cn", "LTAI" + random_chars(rng, kLower, 20)});
    if (f.command == "share") {
      std::string instance = "i-" + random_chars(rng, kLower, 20);
      w.image = "m-" + random_chars(rng, kLower, 20);
      must(sl::RunInstances{w.owner, kRegion, sys, {instance}, {"d-" + random_chars(rng, kLower, 20)}});
      must(sl::CreateImage{w.owner, kRegion, instance, w.image, "bench"});
    }
  }

  rocksdb::DB* db = ledger->store().db();
  const rocksdb::SequenceNumber keys0 = db->GetLatestSequenceNumber();
  const std::uint64_t groups0 = ledger->stats().groups, jobs0 = ledger->stats().jobs;
  const std::uint64_t sync0 = ledger->stats().sync_micros_total;

  RunOutcome run = run_threads(threads, f.seconds, [&](int t, std::atomic<bool>& stop,
                                                       std::vector<std::uint32_t>& lat, std::uint64_t& errors,
                                                       std::string& first_error) {
    const Writer& w = writers[t];
    bool on = false;
    while (!stop.load(std::memory_order_relaxed)) {
      auto t0 = Clock::now();
      sl::Command command;
      if (f.command == "share") {
        sl::ModifyImageSharePermission m{w.owner, kRegion, w.image, {}, {}, std::nullopt};
        (on ? m.remove_accounts : m.add_accounts).push_back(w.recipient);
        command = std::move(m);
      } else {
        command = sl::SetEncryptShareRole{w.owner, !on};
      }
      sl::CommandContext ctx{{f.command == "share" ? w.owner : "", f.command == "share" ? w.access_key : ""},
                             sl::api::new_request_id(), ""};
      auto r = ledger->execute(std::move(command), std::move(ctx));
      if (!r || r->events.size() != 1) {
        if (errors++ == 0) first_error = r ? "expected 1 event, got " + std::to_string(r->events.size())
                                           : describe(r.error());
        continue;
      }
      on = !on;
      lat.push_back(micros_since(t0));
    }
  });

  const double groups = static_cast<double>(ledger->stats().groups - groups0);
  const double jobs = static_cast<double>(ledger->stats().jobs - jobs0);
  const double sync_us = static_cast<double>(ledger->stats().sync_micros_total - sync0);
  const double keys = static_cast<double>(db->GetLatestSequenceNumber() - keys0);
  std::size_t event_bytes = 0;
  if (auto bytes = ledger->store().event_bytes(ledger->head().seq); bytes && *bytes) event_bytes = (*bytes)->size();
  ledger.reset();

  CaseResult r = sl::bench::case_from_run("append/sync/t" + std::to_string(threads), run);
  if (raw_rate > 0) {
    r.ratio = r.rate() / raw_rate;
    r.baseline = "rocksdb_raw";
  }
  const double jobs_per_group = groups > 0 ? jobs / groups : 0;
  const double sync_avg = groups > 0 ? sync_us / groups : 0;
  const double puts_per_op = jobs > 0 ? keys / jobs : 0;
  const double sync_share = run.seconds > 0 ? sync_us / (run.seconds * 1e6) : 0;
  const double cycle_us = groups > 0 ? run.seconds * 1e6 / groups : 0;
  r.extra["event_bytes"] = event_bytes;
  r.extra["puts_per_op"] = puts_per_op;
  r.extra["jobs_per_group"] = jobs_per_group;
  r.extra["groups"] = static_cast<std::uint64_t>(groups);
  r.extra["write_us_per_group"] = sync_avg;
  r.extra["writer_busy_in_write"] = sync_share;
  r.extra["us_per_group_cycle"] = cycle_us;
  char note[220];
  std::snprintf(note, sizeof note,
                "%.1f jobs/group, one group every %.0f us of which %.0f us in the synced write, %.1f keys/op, event %zu B",
                jobs_per_group, cycle_us, sync_avg, puts_per_op, event_bytes);
  r.note = note;
  if (!run.first_error.empty()) r.note += "; first error: " + run.first_error;
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  Flags f;
  CLI::App app{"append_bench: durable appends/s through Ledger::execute() vs raw RocksDB, same run"};
  app.add_option("--seconds", f.seconds, "seconds per case")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--threads", f.threads, "writer thread counts, comma-separated")
      ->delimiter(',')
      ->capture_default_str()
      ->check(CLI::Range(1, 4096));
  app.add_option("--dir", f.dir, "parent dir for the databases (default: fresh mkdtemp under $TMPDIR, removed)");
  app.add_flag("--json", f.json, "one JSON object per line (header, then one per case)");
  app.add_option("--benchmarks", f.benchmarks, "cases to run per thread count, in order: rocksdb_raw,append")
      ->delimiter(',')
      ->capture_default_str()
      ->check(CLI::IsMember({"rocksdb_raw", "append"}));
  app.add_option("--command", f.command, "ledger command: share (ModifyImageSharePermission toggle) | role (SetEncryptShareRole toggle)")
      ->capture_default_str()
      ->check(CLI::IsMember({"share", "role"}));
  app.add_option("--value-size", f.value_size, "rocksdb_raw event value bytes")->capture_default_str()->check(CLI::Range(8, 1 << 20));
  app.add_option("--projection-puts", f.projection_puts, "rocksdb_raw projection puts per op")->capture_default_str()->check(CLI::Range(0, 64));
  app.add_option("--seed", f.seed, "seed for ids, keys and payloads")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  sl::bench::ScratchDir scratch(f.dir, "append_bench");
  std::string threads_text;
  for (int t : f.threads) threads_text += (threads_text.empty() ? "" : ",") + std::to_string(t);
  sl::bench::print_header(
      {{"bench", "append_bench"},
       {"build", sl::bench::build_description()},
       {"cores", std::to_string(sl::bench::cores())},
       {"loadavg", sl::bench::load_average()},
       {"rocksdb", sl::bench::rocksdb_version()},
       {"payload", "rocksdb_raw: " + std::to_string(f.value_size) + " B event + " + std::to_string(f.projection_puts) +
                       " x ~140 B (key+value) projection puts per synced WriteBatch; append: " +
                       (f.command == "share" ? "ModifyImageSharePermission toggle" : "SetEncryptShareRole toggle") +
                       " (1 event + its rows)"},
       {"threads", threads_text},
       {"seconds", sl::bench::format_seconds(f.seconds) + " per case"},
       {"seed", std::to_string(f.seed)},
       {"dir", scratch.path()}},
      f.json, "append_bench");

  auto want = [&](const std::string& b) { return std::find(f.benchmarks.begin(), f.benchmarks.end(), b) != f.benchmarks.end(); };
  int case_no = 0;
  for (int threads : f.threads) {
    double raw_rate = 0;
    for (const std::string& b : f.benchmarks) {
      std::string dir = scratch.fresh("case" + std::to_string(case_no++) + "_" + b + "_t" + std::to_string(threads));
      CaseResult r;
      if (b == "rocksdb_raw") {
        r = run_raw(f, threads, dir);
        raw_rate = r.rate();
      } else {
        r = run_ledger(f, threads, dir, want("rocksdb_raw") ? raw_rate : 0);
      }
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
      sl::bench::print_case(r, f.json);
    }
  }
  return 0;
}
