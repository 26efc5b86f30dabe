// as_of_bench: point-in-time reads (SPEC §2.3) as the log grows.
//
// For each --sizes N: a fresh ledger gets a generated history of about N events
// (bench/history_workload.h: many images, each with a bounded history of its
// own, written through Ledger::submit), its memtables are flushed, and then:
//   generate/N        : events written per second while building it (context)
//   bytes/N           : on-disk bytes per event of the history index (hist + idx
//                       column families) next to the events family and proj
//   asof/check/N      : check_access over rows_as_of(seq) for a random image at a
//                       random seq of its life and a random account (half of
//                       the time one it was shared with): "could A use X then?"
//   asof/launchers/N  : image_launchers over rows_as_of(seq), same choice of
//                       (image, seq): scans the image's grant rows' versions
//   now/check/N       : check_access over the current view (reference)
// All sizes are built first and kept open; then every case runs --rounds times
// on every size, sizes interleaved, and each line shows its least-CPU round.
// A query line's ratio is its CPU per query (the calling thread's clock) over
// the same case at the first (smallest) size: the cost should grow like
// log(history), never like history; the target is <= 2x from 10k to 10M events.
// (Wall-clock ratios are in the JSON as wall_ratio / p50_ratio; on a shared
// 2-core machine wall time mostly measures the neighbours.)
//
// Example:
//   as_of_bench --sizes=10000,1000000 --queries=20000
//   asof/check/10k  :   6.1 micros/op ...
//   asof/check/1M   :   8.0 micros/op ...; 1.31x asof/check/10k
#include <CLI/CLI.hpp>
#include <rocksdb/db.h>
#include <rocksdb/perf_context.h>

#include <time.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_common.h"
#include "bench/history_workload.h"
#include "projections/ledger.h"
#include "projections/queries.h"

namespace {

using Clock = std::chrono::steady_clock;
using sl::bench::CaseResult;

struct Flags {
  std::vector<std::uint64_t> sizes = {10000, 1000000};
  std::uint64_t queries = 20000;
  std::string dir;
  bool json = false;
  bool keep = false;
  bool compact = false;
  bool reuse = false;
  bool perf_context = false;
  int rounds = 3;
  std::uint64_t seed = 11;
  std::vector<std::string> benchmarks = {"asof_check", "asof_launchers", "now_check"};
};

std::string size_label(std::uint64_t n) {
  if (n >= 1000000 && n % 1000000 == 0) return std::to_string(n / 1000000) + "M";
  if (n >= 1000 && n % 1000 == 0) return std::to_string(n / 1000) + "k";
  return std::to_string(n);
}

// --keep writes the generated workload (what the queries are drawn from) next
// to its database, so that --reuse can measure the same history again without
// regenerating it (10M events take most of an hour here).
std::string workload_path(const std::string& dir) { return dir + ".workload.json"; }

void save_workload(const sl::bench::Workload& w, const std::string& path) {
  sl::bench::Json images = sl::bench::Json::array();
  for (const auto& i : w.images) {
    images.push_back({{"id", i.id}, {"owner", i.owner}, {"created", i.created}, {"deleted", i.deleted},
                      {"recipients", i.recipients}});
  }
  sl::bench::Json j{{"accounts", w.accounts}, {"images", images}, {"planned_events", w.planned_events},
                    {"commands", w.commands}, {"seconds", w.seconds}};
  std::ofstream(path) << j.dump();
}

std::optional<sl::bench::Workload> load_workload(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  auto j = sl::bench::Json::parse(in);
  sl::bench::Workload w;
  w.accounts = j["accounts"].get<std::vector<std::string>>();
  for (const auto& i : j["images"]) {
    w.images.push_back({i["id"], i["owner"], i["created"], i["deleted"], i["recipients"]});
  }
  w.planned_events = j["planned_events"];
  w.commands = j["commands"];
  w.seconds = j["seconds"];
  return w;
}

std::string describe(const sl::Error& e) { return std::to_string(e.http) + " " + e.code + ": " + e.message; }

std::uint64_t cf_property(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf, const std::string& name) {
  std::uint64_t v = 0;
  db->GetIntProperty(cf, name, &v);
  return v;
}

struct Query {
  std::uint64_t seq;
  std::uint32_t image;
  std::uint32_t account;
};

// (image, seq in its life, account): half the accounts are ones it was shared with.
std::vector<Query> make_queries(const sl::bench::Workload& w, std::uint64_t head, std::uint64_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::uint32_t> created;
  for (std::uint32_t i = 0; i < w.images.size(); ++i) {
    if (w.images[i].created > 0) created.push_back(i);
  }
  std::vector<Query> out;
  out.reserve(n);
  for (std::uint64_t q = 0; q < n && !created.empty(); ++q) {
    std::uint32_t i = created[rng() % created.size()];
    const auto& life = w.images[i];
    std::uint64_t end = life.deleted ? life.deleted : head;
    std::uint64_t seq = life.created + rng() % (end - life.created + 1);
    std::uint32_t account = static_cast<std::uint32_t>(rng() % w.accounts.size());
    if (!life.recipients.empty() && rng() % 2 == 0) account = life.recipients[rng() % life.recipients.size()];
    out.push_back({seq, i, account});
  }
  return out;
}

// The calling thread's CPU time, precise (not tick-sampled like getrusage).
double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// RocksDB's per-thread counters over one pass of the queries, per query:
// where a longer history's extra cost goes (blocks read, filter checks).
sl::bench::Json perf_counters_per_query(const rocksdb::PerfContext& pc, std::size_t queries) {
  auto per = [&](std::uint64_t n) { return queries ? static_cast<double>(n) / static_cast<double>(queries) : 0.0; };
  return {{"block_cache_hits", per(pc.block_cache_hit_count)},
          {"block_reads", per(pc.block_read_count)},
          {"block_read_bytes", per(pc.block_read_byte)},
          {"bloom_sst_hits", per(pc.bloom_sst_hit_count)},
          {"bloom_sst_misses", per(pc.bloom_sst_miss_count)},
          {"memtable_seeks", per(pc.seek_on_memtable_count)},
          {"child_seeks", per(pc.seek_child_seek_count)},
          {"internal_keys_skipped", per(pc.internal_key_skipped_count)}};
}

// Runs fn(query) for every query, timing each; returns the case figures
// (cpu_us_per_op is the calling thread's CPU per query).
template <class Fn>
CaseResult time_queries(const std::string& name, const std::vector<Query>& queries, Fn fn) {
  std::vector<std::uint32_t> micros;
  micros.reserve(queries.size());
  double cpu0 = thread_cpu_seconds();
  auto t0 = Clock::now();
  for (const Query& q : queries) {
    auto s = Clock::now();
    fn(q);
    micros.push_back(static_cast<std::uint32_t>(std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - s).count()));
  }
  CaseResult r;
  r.name = name;
  r.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  r.ops = queries.size();
  r.cpu_us_per_op = r.ops ? (thread_cpu_seconds() - cpu0) * 1e6 / static_cast<double>(r.ops) : 0;
  r.latency = sl::bench::percentiles(micros);
  return r;
}

void print_bytes(const std::string& label, const sl::Store& store, std::uint64_t events, bool json) {
  rocksdb::DB* db = store.db();
  struct Family {
    const char* name;
    rocksdb::ColumnFamilyHandle* cf;
  };
  sl::bench::Json j;
  j["type"] = "bytes";
  j["case"] = "bytes/" + label;
  j["events"] = events;
  std::map<std::string, std::pair<std::uint64_t, std::uint64_t>> sizes;  // sst, live
  for (const Family& f : {Family{"events", store.events()}, Family{"hist", store.hist()}, Family{"idx", store.idx()},
                          Family{"proj", store.proj()}}) {
    std::uint64_t sst = cf_property(db, f.cf, "rocksdb.total-sst-files-size");
    std::uint64_t live = cf_property(db, f.cf, "rocksdb.estimate-live-data-size");
    sizes[f.name] = {sst, live};
    j[std::string(f.name) + "_sst_bytes"] = sst;
    j[std::string(f.name) + "_live_bytes"] = live;
  }
  auto per_event = [&](std::uint64_t bytes) { return events ? static_cast<double>(bytes) / static_cast<double>(events) : 0; };
  double index_sst = per_event(sizes["hist"].first + sizes["idx"].first);
  double index_live = per_event(sizes["hist"].second + sizes["idx"].second);
  j["history_index_bytes_per_event"] = index_sst;
  j["history_index_live_bytes_per_event"] = index_live;
  j["hist_bytes_per_event"] = per_event(sizes["hist"].first);
  j["idx_bytes_per_event"] = per_event(sizes["idx"].first);
  j["events_bytes_per_event"] = per_event(sizes["events"].first);
  j["proj_bytes_per_event"] = per_event(sizes["proj"].first);
  if (json) {
    std::cout << j.dump() << std::endl;
    return;
  }
  std::printf("%-22s: history index (hist+idx) %6.1f B/event (live %6.1f; hist %.1f + idx %.1f)  events %6.1f B/event  "
              "proj %5.1f B/event  (SST bytes after flush, %llu events)\n",
              ("bytes/" + label).c_str(), index_sst, index_live, per_event(sizes["hist"].first),
              per_event(sizes["idx"].first), per_event(sizes["events"].first), per_event(sizes["proj"].first),
              static_cast<unsigned long long>(events));
  std::fflush(stdout);
}

struct History {
  std::string label, dir;
  std::unique_ptr<sl::Ledger> ledger;
  sl::bench::Workload workload;
  std::uint64_t head = 0;
  std::vector<Query> queries;
};

// Writes a history of about `size` events into h.ledger and prints generate/N.
void generate(History& h, std::uint64_t size, const Flags& f) {
  sl::bench::WorkloadOptions wo;
  wo.events = size;
  wo.seed = f.seed;
  if (!f.json) {
    wo.progress = [](std::uint64_t events, double secs) {
      std::fprintf(stderr, "  ... %llu events planned, %.0f s\n", static_cast<unsigned long long>(events), secs);
    };
  }
  const std::uint64_t groups0 = h.ledger->stats().groups, jobs0 = h.ledger->stats().jobs;
  double cpu0 = sl::bench::cpu_seconds_process();
  h.workload = sl::bench::generate_history(*h.ledger, wo);
  h.head = h.ledger->head().seq;
  CaseResult g;
  g.name = "generate/" + h.label;
  g.unit = "events";
  g.seconds = h.workload.seconds;
  g.ops = h.head;
  g.errors = h.workload.errors;
  g.cpu_us_per_op = h.head ? (sl::bench::cpu_seconds_process() - cpu0) * 1e6 / static_cast<double>(h.head) : 0;
  const double groups = static_cast<double>(h.ledger->stats().groups - groups0);
  const double jobs = static_cast<double>(h.ledger->stats().jobs - jobs0);
  char note[200];
  std::snprintf(note, sizeof note, "%zu accounts, %zu images, %.0f jobs/group, %llu commands",
                h.workload.accounts.size(), h.workload.images.size(), groups > 0 ? jobs / groups : 0,
                static_cast<unsigned long long>(h.workload.commands));
  g.note = note;
  if (h.workload.errors) g.note += "; first error: " + h.workload.first_error;
  g.extra["accounts"] = h.workload.accounts.size();
  g.extra["images"] = h.workload.images.size();
  g.extra["jobs_per_group"] = groups > 0 ? jobs / groups : 0;
  sl::bench::print_case(g, f.json);
  if (f.keep) save_workload(h.workload, workload_path(h.dir));
}

}  // namespace

int main(int argc, char** argv) {
  Flags f;
  CLI::App app{"as_of_bench: as-of permission check and launchers list vs history length, same run"};
  app.add_option("--sizes", f.sizes, "history sizes in events, comma-separated (10M: add 10000000, ~10 min here)")
      ->delimiter(',')
      ->capture_default_str()
      ->check(CLI::Range(std::uint64_t{1000}, std::uint64_t{100000000}));
  app.add_option("--queries", f.queries, "queries per case")->capture_default_str()->check(CLI::Range(1, 100000000));
  app.add_option("--dir", f.dir, "parent dir for the databases (default: fresh mkdtemp under $TMPDIR, removed)");
  app.add_flag("--json", f.json, "one JSON object per line (header, then one per case)");
  app.add_flag("--keep", f.keep, "keep each generated database (under --dir) instead of removing it");
  app.add_flag("--compact", f.compact, "fully compact every column family before measuring");
  app.add_flag("--perf-context", f.perf_context,
               "after the timed rounds, one untimed pass per size counting RocksDB work per query (blocks, filters, seeks)");
  app.add_flag("--reuse", f.reuse, "measure the databases a --keep run left under --dir instead of generating");
  app.add_option("--seed", f.seed, "seed for the workload and the queries")->capture_default_str();
  app.add_option("--rounds", f.rounds, "rounds per case (sizes interleaved); the least-CPU round is reported")
      ->capture_default_str()
      ->check(CLI::Range(1, 100));
  app.add_option("--benchmarks", f.benchmarks, "query cases per size, in order: asof_check,asof_launchers,now_check")
      ->delimiter(',')
      ->capture_default_str()
      ->check(CLI::IsMember({"asof_check", "asof_launchers", "now_check"}));
  CLI11_PARSE(app, argc, argv);

  sl::bench::ScratchDir scratch(f.dir, "as_of_bench");
  std::string sizes_text;
  for (auto n : f.sizes) sizes_text += (sizes_text.empty() ? "" : ",") + size_label(n);
  sl::bench::print_header(
      {{"bench", "as_of_bench"},
       {"build", sl::bench::build_description()},
       {"cores", std::to_string(sl::bench::cores())},
       {"loadavg", sl::bench::load_average()},
       {"rocksdb", sl::bench::rocksdb_version()},
       {"events", sizes_text},
       {"payload", "history_workload: accounts=clamp(N/100,100,5000), active images=clamp(N/500,20,2000), "
                   "~50 events per image life (share/unshare, public, launch, delete)"},
       {"queries", std::to_string(f.queries) + " per case and round, 1 thread, best of " + std::to_string(f.rounds) +
                       " interleaved rounds; ratio = CPU/query vs the first size"},
       {"compact", f.compact ? "full CompactRange before measuring" : "flush + wait for pending compactions"},
       {"seed", std::to_string(f.seed)},
       {"dir", scratch.path()}},
      f.json, "as_of_bench");

  // Phase 1: build every history (kept open), so that phase 2 can interleave
  // the sizes: on a shared machine load drifts over minutes, and measuring
  // 10k now and 10M half an hour later would compare two different machines.
  std::vector<History> histories;
  for (std::uint64_t size : f.sizes) {
    History h;
    h.label = size_label(size);
    h.dir = scratch.path() + "/history_" + h.label;
    std::optional<sl::bench::Workload> kept = f.reuse ? load_workload(workload_path(h.dir)) : std::nullopt;
    if (f.reuse && !kept) {
      std::fprintf(stderr, "as_of_bench: --reuse: no %s (make it with --keep --dir)\n", workload_path(h.dir).c_str());
      return 2;
    }
    if (!kept) h.dir = scratch.fresh("history_" + h.label);
    auto opened = sl::Ledger::open(h.dir);
    if (!opened) {
      std::fprintf(stderr, "as_of_bench: open %s: %s\n", h.dir.c_str(), describe(opened.error()).c_str());
      return 2;
    }
    h.ledger = std::move(*opened);
    if (kept) {
      h.workload = std::move(*kept);
      h.head = h.ledger->head().seq;
      std::fprintf(stderr, "  reusing %s: %llu events\n", h.dir.c_str(), static_cast<unsigned long long>(h.head));
    } else {
      generate(h, size, f);
    }
    auto t_settle = Clock::now();
    sl::bench::settle(h.ledger->store(), f.compact);
    if (!f.json) {
      std::fprintf(stderr, "  settled (flush%s) in %.1f s\n", f.compact ? " + compaction" : "",
                   std::chrono::duration<double>(Clock::now() - t_settle).count());
    }
    print_bytes(h.label, h.ledger->store(), h.head, f.json);
    h.queries = make_queries(h.workload, h.head, f.queries, f.seed + size);
    histories.push_back(std::move(h));
  }

  // Phase 2: every case on every size, --rounds times, sizes interleaved; each
  // line reports the round with the least CPU per query. The ratio compares
  // CPU per query (the calling thread's clock) with the first size's: wall
  // time on a shared 2-core machine mostly measures the neighbours.
  const sl::Viewer admin{true, ""};
  for (const std::string& b : f.benchmarks) {
    std::vector<CaseResult> best(histories.size());
    // --perf-context adds one untimed pass per size that only counts.
    const int passes = f.rounds + (f.perf_context ? 1 : 0);
    for (int round = 0; round < passes; ++round) {
      const bool counting = round == f.rounds;
      for (std::size_t i = 0; i < histories.size(); ++i) {
        History& h = histories[round % 2 ? histories.size() - 1 - i : i];
        std::size_t at = static_cast<std::size_t>(&h - histories.data());
        if (counting) {
          rocksdb::SetPerfLevel(rocksdb::PerfLevel::kEnableCount);
          rocksdb::get_perf_context()->Reset();
        }
        const sl::bench::Workload& w = h.workload;
        sl::Ledger& ledger = *h.ledger;
        CaseResult r;
        std::uint64_t allowed = 0, listed = 0, errors = 0;
        if (b == "asof_check" || b == "now_check") {
          const bool now = b == "now_check";
          r = time_queries((now ? "now/check/" : "asof/check/") + h.label, h.queries, [&](const Query& q) {
            auto view = now ? ledger.view() : ledger.view(q.seq);
            if (!view) return void(++errors);
            auto answer = sl::check_access(**view, w.accounts[q.account], w.images[q.image].id, admin);
            if (!answer) return void(++errors);
            if ((*answer)["allowed"].get<bool>()) ++allowed;
          });
          double fraction = static_cast<double>(allowed) / static_cast<double>(h.queries.size());
          r.extra["allowed_fraction"] = fraction;
          char note[64];
          std::snprintf(note, sizeof note, "%.0f%% allowed", 100.0 * fraction);
          r.note = note;
        } else {
          r = time_queries("asof/launchers/" + h.label, h.queries, [&](const Query& q) {
            auto view = ledger.view(q.seq);
            if (!view) return void(++errors);
            auto answer = sl::image_launchers(**view, w.images[q.image].id, admin);
            if (!answer) return;  // deleted at exactly this seq: 404 is the right answer
            listed += (*answer)["accounts"].size();
          });
          double avg = static_cast<double>(listed) / static_cast<double>(h.queries.size());
          r.extra["accounts_per_answer"] = avg;
          char note[64];
          std::snprintf(note, sizeof note, "%.1f accounts/answer", avg);
          r.note = note;
        }
        r.errors = errors;
        if (counting) {
          rocksdb::SetPerfLevel(rocksdb::PerfLevel::kDisable);
          best[at].extra["rocksdb_per_query"] = perf_counters_per_query(*rocksdb::get_perf_context(), h.queries.size());
          best[at].note += "; rocksdb/query " + best[at].extra["rocksdb_per_query"].dump();
        } else if (round == 0 || r.cpu_us_per_op < best[at].cpu_us_per_op) {
          best[at] = r;
        }
      }
    }
    for (std::size_t i = 0; i < histories.size(); ++i) {
      CaseResult& r = best[i];
      r.extra["rounds"] = f.rounds;
      if (i > 0 && best[0].cpu_us_per_op > 0) {
        r.ratio = r.cpu_us_per_op / best[0].cpu_us_per_op;
        r.baseline = r.name.substr(0, r.name.rfind('/') + 1) + histories[0].label + " (cpu/query)";
        r.extra["wall_ratio"] = best[0].micros_per_op() > 0 ? r.micros_per_op() / best[0].micros_per_op() : 0;
        r.extra["p50_ratio"] = best[0].latency.p50_us > 0 ? r.latency.p50_us / best[0].latency.p50_us : 0;
      }
      sl::bench::print_case(r, f.json);
    }
  }
  for (History& h : histories) {
    h.ledger.reset();
    if (!f.keep && !f.reuse) {
      std::error_code ec;
      std::filesystem::remove_all(h.dir, ec);
    }
  }
  return 0;
}
