// audit_bench: the audit tool's verify and replay (SPEC §3.4) against a raw
// RocksDB scan of the same events, on one generated database, same run.
//
// The database (--events, default 1 M) is written through Ledger::submit with
// bench/history_workload.h, flushed, and closed; the cases then open it as
// `shareledger-audit` does (audit::AuditStore: a RocksDB secondary instance). One untimed raw scan warms the page
// cache first, so every case reads warm data. Cases (--benchmarks, in order):
//   raw_scan : RocksDB iterator over the events family (readahead and no
//              block-cache fill, as Store::scan_events for a whole-log pass,
//              Caching::kBypass), touching every key and value: the baseline
//   chain    : scan_verified(hash_only): dense seqs + SHA-256 chain over the
//              stored bytes, no JSON decode (what verify costs without schema)
//   decode   : raw scan + decode_event() per event (JSON -> Event, no hash)
//   verify   : audit::verify: dense seqs, every hash and link, every schema
//   fold     : replay(): verify + decode + evolve() into State (no rows)
//   replay   : audit::replay_diff: fold, derive every row (all_rows), and
//              diff them against the stored proj family
// Every case runs --rounds times (rounds interleave the cases); each line shows
// its fastest round, and its ratio is its events/s over raw_scan's fastest. The
// note (and JSON cpu_ratio) gives the same ratio in process CPU per event.
//
// Example:
//   audit_bench --events=1000000
//   raw_scan :   0.8 micros/op 1250000 ops/sec ...
//   verify   :   1.9 micros/op  520000 ops/sec ...; 0.42x raw_scan
#include <CLI/CLI.hpp>
#include <rocksdb/db.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_common.h"
#include "bench/history_workload.h"
#include "events/codec.h"
#include "projections/ledger.h"
#include "projections/replay.h"
#include "tools/audit.h"

namespace {

using Clock = std::chrono::steady_clock;
using sl::bench::CaseResult;

struct Flags {
  std::uint64_t events = 1000000;
  std::string dir;
  std::string db;  // an existing database instead of generating one
  bool json = false;
  bool keep = false;
  int rounds = 3;
  std::uint64_t seed = 13;
  std::vector<std::string> benchmarks = {"raw_scan", "chain", "decode", "verify", "fold", "replay"};
};

std::string describe(const sl::Error& e) { return std::to_string(e.http) + " " + e.code + ": " + e.message; }

// Times fn() once; `events` is what it processed.
template <class Fn>
CaseResult timed(const std::string& name, Fn fn) {
  double cpu0 = sl::bench::cpu_seconds_process();
  auto t0 = Clock::now();
  CaseResult r;
  r.name = name;
  r.ops = fn(r);
  r.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  r.cpu_us_per_op = r.ops ? (sl::bench::cpu_seconds_process() - cpu0) * 1e6 / static_cast<double>(r.ops) : 0;
  return r;
}

std::uint64_t raw_scan(const sl::Store& store, std::uint64_t* bytes) {
  rocksdb::ReadOptions ro;
  ro.readahead_size = 2 << 20;  // as Store::scan_events for a whole-log pass
  ro.fill_cache = false;        // (Caching::kBypass), which the log reader uses
  std::unique_ptr<rocksdb::Iterator> it(store.db()->NewIterator(ro, store.events()));
  std::uint64_t n = 0, total = 0;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    total += it->key().size() + it->value().size() + static_cast<unsigned char>(it->value()[0]);
    ++n;
  }
  if (bytes) *bytes = total;
  return n;
}

}  // namespace

int main(int argc, char** argv) {
  Flags f;
  CLI::App app{"audit_bench: audit verify / replay vs a raw RocksDB scan of the events, same run"};
  app.add_option("--events", f.events, "events to generate")->capture_default_str()->check(CLI::Range(std::uint64_t{1000}, std::uint64_t{100000000}));
  app.add_option("--dir", f.dir, "parent dir for the database (default: fresh mkdtemp under $TMPDIR, removed)");
  app.add_option("--db", f.db, "measure this existing (stopped) database instead of generating one");
  app.add_flag("--json", f.json, "one JSON object per line (header, then one per case)");
  app.add_flag("--keep", f.keep, "keep the generated database (under --dir)");
  app.add_option("--seed", f.seed, "workload seed")->capture_default_str();
  app.add_option("--rounds", f.rounds, "rounds of all cases; each line shows the case's fastest round")
      ->capture_default_str()
      ->check(CLI::Range(1, 100));
  app.add_option("--benchmarks", f.benchmarks, "cases in order: raw_scan,chain,decode,verify,fold,replay")
      ->delimiter(',')
      ->capture_default_str()
      ->check(CLI::IsMember({"raw_scan", "chain", "decode", "verify", "fold", "replay"}));
  CLI11_PARSE(app, argc, argv);

  sl::bench::ScratchDir scratch(f.dir, "audit_bench");
  std::string db_dir = f.db;
  std::string generated;
  if (db_dir.empty()) {
    db_dir = scratch.fresh("history");
    auto opened = sl::Ledger::open(db_dir);
    if (!opened) {
      std::fprintf(stderr, "audit_bench: open %s: %s\n", db_dir.c_str(), describe(opened.error()).c_str());
      return 2;
    }
    sl::bench::WorkloadOptions wo;
    wo.events = f.events;
    wo.seed = f.seed;
    if (!f.json) {
      wo.progress = [](std::uint64_t events, double secs) {
        std::fprintf(stderr, "  ... %llu events planned, %.0f s\n", static_cast<unsigned long long>(events), secs);
      };
    }
    sl::bench::Workload w = sl::bench::generate_history(**opened, wo);
    if (w.errors) {
      std::fprintf(stderr, "audit_bench: %llu generated commands failed; first: %s\n",
                   static_cast<unsigned long long>(w.errors), w.first_error.c_str());
      return 2;
    }
    sl::bench::settle((*opened)->store());
    char text[160];
    std::snprintf(text, sizeof text, "%llu events in %.1f s (%.0f events/s), %zu accounts, %zu images",
                  static_cast<unsigned long long>((*opened)->head().seq), w.seconds,
                  static_cast<double>((*opened)->head().seq) / w.seconds, w.accounts.size(), w.images.size());
    generated = text;
    opened->reset();  // closed: the audit reads a stopped database
  }

  auto t_open = Clock::now();
  auto store = sl::audit::AuditStore::open(db_dir);  // as shareledger-audit opens it
  if (!store) {
    std::fprintf(stderr, "audit_bench: open %s: %s\n", db_dir.c_str(), describe(store.error()).c_str());
    return 2;
  }
  const double open_seconds = std::chrono::duration<double>(Clock::now() - t_open).count();
  const sl::Store& s = (*store)->store();
  std::uint64_t bytes = 0;
  const std::uint64_t events = raw_scan(s, &bytes);  // untimed: warms the page cache
  sl::bench::print_header(
      {{"bench", "audit_bench"},
       {"build", sl::bench::build_description()},
       {"cores", std::to_string(sl::bench::cores())},
       {"loadavg", sl::bench::load_average()},
       {"rocksdb", sl::bench::rocksdb_version()},
       {"events", std::to_string(events) + " (" + std::to_string(events ? bytes / events : 0) + " B/event stored)"},
       {"database", generated.empty() ? "existing " + db_dir : "generated: " + generated},
       {"payload", "history_workload (share/unshare, public, instances, forced deletes), warm"},
       {"open", "AuditStore::open (RocksDB secondary, as shareledger-audit) " + std::to_string(open_seconds).substr(0, 5) + " s"},
       {"rounds", std::to_string(f.rounds) + " (each line: its fastest round)"},
       {"seed", std::to_string(f.seed)},
       {"dir", db_dir}},
      f.json, "audit_bench");

  // Every round runs every case in order; each line shows the case's fastest
  // round (wall clock), and its ratio is over the fastest raw_scan. Rounds
  // average out a shared machine's load drift; the JSON also has cpu_ratio
  // (process CPU per event, raw_scan's over the case's).
  auto run_case = [&](const std::string& b) {
    CaseResult r;
    if (b == "raw_scan") {
      r = timed("raw_scan", [&](CaseResult&) { return raw_scan(s, nullptr); });
    } else if (b == "chain") {
      r = timed("chain", [&](CaseResult& c) {
        std::uint64_t n = 0;
        sl::ScanOptions o;
        o.hash_only = true;
        auto st = sl::scan_verified(s, o, [&](const sl::Event&, std::string_view) {
          ++n;
          return true;
        });
        if (!st) {
          c.errors = 1;
          c.note = describe(st.error());
        }
        return n;
      });
    } else if (b == "decode") {
      r = timed("decode", [&](CaseResult& c) {
        std::uint64_t n = 0;
        auto st = s.scan_events(1, [&](std::uint64_t, std::string_view bytes) {
          if (!sl::decode_event(bytes)) ++c.errors;
          ++n;
          return true;
        }, nullptr, sl::Store::Caching::kBypass);
        if (!st) ++c.errors;
        return n;
      });
    } else if (b == "verify") {
      r = timed("verify", [&](CaseResult& c) {
        sl::audit::Report rep = sl::audit::verify(s, nullptr);
        if (rep.exit_code != 0) {
          c.errors = 1;
          c.note = rep.text;
        }
        return rep.json.value("events", std::uint64_t{0});
      });
    } else if (b == "fold") {
      r = timed("fold", [&](CaseResult& c) {
        auto state = sl::replay(s, sl::ScanOptions{});
        if (!state) {
          c.errors = 1;
          c.note = describe(state.error());
        }
        return state ? state->head_seq : 0;
      });
    } else {
      r = timed("replay", [&](CaseResult& c) {
        sl::audit::Report rep = sl::audit::replay_diff(s, nullptr);
        if (rep.exit_code != 0) {
          c.errors = 1;
          c.note = rep.text.substr(0, 300);
        }
        c.extra["rows"] = rep.json.value("rows", std::uint64_t{0});
        if (c.note.empty()) c.note = std::to_string(rep.json.value("rows", std::uint64_t{0})) + " rows diffed";
        return rep.json.value("events", std::uint64_t{0});
      });
    }
    if (r.ops != events) {
      ++r.errors;
      r.note += (r.note.empty() ? "" : "; ") + std::string("processed ") + std::to_string(r.ops) + " of " +
                std::to_string(events);
    }
    return r;
  };
  std::map<std::string, CaseResult> best;
  for (int round = 0; round < f.rounds; ++round) {
    for (const std::string& b : f.benchmarks) {
      CaseResult r = run_case(b);
      auto it = best.find(b);
      if (it == best.end() || r.errors || (!it->second.errors && r.seconds < it->second.seconds)) best[b] = r;
    }
  }
  int failures = 0;
  const CaseResult* raw = best.count("raw_scan") ? &best["raw_scan"] : nullptr;
  for (const std::string& b : f.benchmarks) {
    CaseResult& r = best[b];
    r.extra["rounds"] = f.rounds;
    if (b != "raw_scan" && raw && raw->rate() > 0) {
      r.ratio = r.rate() / raw->rate();
      r.baseline = "raw_scan";
      double cpu_ratio = r.cpu_us_per_op > 0 ? raw->cpu_us_per_op / r.cpu_us_per_op : 0;
      r.extra["cpu_ratio"] = cpu_ratio;
      char note[48];
      std::snprintf(note, sizeof note, "cpu %.2fx raw_scan", cpu_ratio);
      r.note = r.note.empty() ? note : r.note + ", " + note;
    }
    failures += r.errors ? 1 : 0;
    sl::bench::print_case(r, f.json);
  }
  store->reset();
  if (!f.db.empty() || f.keep) return failures ? 1 : 0;
  std::error_code ec;
  std::filesystem::remove_all(db_dir, ec);
  return failures ? 1 : 0;
}
