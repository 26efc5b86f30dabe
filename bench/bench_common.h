// Helpers shared by the benchmarks in bench/: the header block, latency
// percentiles, CPU clocks, scratch directories and the one-line-per-case
// report (text like db_bench, or one JSON object per line with --json).
//
// Thread safety: free functions over their arguments; cpu_seconds_thread()
// reads the calling thread's clock. Header-only.
#pragma once

#include <sys/resource.h>
#include <unistd.h>

#include <rocksdb/db.h>
#include <rocksdb/version.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "storage/store.h"

#ifndef SL_BUILD_TYPE
#define SL_BUILD_TYPE "unknown"
#endif

namespace sl::bench {

using Json = nlohmann::ordered_json;

// "Release (NDEBUG, optimized)"; a benchmark of a Debug build says so loudly.
inline std::string build_description() {
  std::string out = SL_BUILD_TYPE;
#ifdef NDEBUG
  out += " (NDEBUG";
#else
  out += " (asserts on";
#endif
#ifdef __OPTIMIZE__
  out += ", optimized)";
#else
  out += ", NOT optimized: numbers are meaningless)";
#endif
  return out;
}

inline unsigned cores() { return std::max(1u, std::thread::hardware_concurrency()); }

// "0.52 0.61 0.70" from /proc/loadavg; "" when unreadable.
inline std::string load_average() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  if (!(in >> a >> b >> c)) return "";
  return a + " " + b + " " + c;
}

inline std::string rocksdb_version() {
  return std::to_string(ROCKSDB_MAJOR) + "." + std::to_string(ROCKSDB_MINOR) + "." + std::to_string(ROCKSDB_PATCH);
}

inline double seconds_of(const struct timeval& tv) { return tv.tv_sec + tv.tv_usec * 1e-6; }

// User + system CPU seconds of the whole process / of the calling thread.
inline double cpu_seconds_process() {
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  return seconds_of(ru.ru_utime) + seconds_of(ru.ru_stime);
}
inline double cpu_seconds_thread() {
  struct rusage ru {};
  getrusage(RUSAGE_THREAD, &ru);
  return seconds_of(ru.ru_utime) + seconds_of(ru.ru_stime);
}

struct Percentiles {
  double p50_us = 0, p99_us = 0, max_us = 0;
};

// Nearest-rank percentiles of latencies in microseconds. Sorts `micros`.
inline Percentiles percentiles(std::vector<std::uint32_t>& micros) {
  Percentiles p;
  if (micros.empty()) return p;
  std::sort(micros.begin(), micros.end());
  auto rank = [&](double q) {
    std::size_t i = static_cast<std::size_t>(q * static_cast<double>(micros.size()));
    return static_cast<double>(micros[std::min(i, micros.size() - 1)]);
  };
  p.p50_us = rank(0.50);
  p.p99_us = rank(0.99);
  p.max_us = micros.back();
  return p;
}

// "5 s" / "0.5 s"
inline std::string format_seconds(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g s", s);
  return buf;
}

// "812 us" / "4.12 ms"
inline std::string human_micros(double us) {
  char buf[32];
  if (us < 1000) {
    std::snprintf(buf, sizeof buf, "%.0f us", us);
  } else {
    std::snprintf(buf, sizeof buf, "%.2f ms", us / 1000);
  }
  return buf;
}

// A scratch directory: `parent` (created if needed) or a fresh mkdtemp under
// $TMPDIR (/tmp). Removed by the destructor only when this object created it.
class ScratchDir {
 public:
  explicit ScratchDir(const std::string& parent, const std::string& prefix) {
    if (!parent.empty()) {
      std::filesystem::create_directories(parent);
      path_ = parent;
      return;
    }
    const char* tmp = std::getenv("TMPDIR");
    std::string templ = std::string(tmp && *tmp ? tmp : "/tmp") + "/" + prefix + ".XXXXXX";
    std::vector<char> buf(templ.begin(), templ.end());
    buf.push_back('\0');
    if (mkdtemp(buf.data()) == nullptr) {
      std::perror("mkdtemp");
      std::exit(2);
    }
    path_ = buf.data();
    owned_ = true;
  }
  ~ScratchDir() {
    std::error_code ec;
    if (owned_) std::filesystem::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  const std::string& path() const { return path_; }
  // A fresh (removed, not created) sub-directory path for one case.
  std::string fresh(const std::string& name) const {
    std::string p = path_ + "/" + name;
    std::error_code ec;
    std::filesystem::remove_all(p, ec);
    return p;
  }

 private:
  std::string path_;
  bool owned_ = false;
};

// Prints the header block: "name : value" lines (text) or one JSON object.
inline void print_header(const std::vector<std::pair<std::string, std::string>>& fields, bool json,
                         const std::string& bench) {
  if (json) {
    Json j;
    j["type"] = "header";
    j["bench"] = bench;
    for (const auto& [k, v] : fields) j[k] = v;
    std::cout << j.dump() << std::endl;
    return;
  }
  for (const auto& [k, v] : fields) std::printf("%-14s: %s\n", k.c_str(), v.c_str());
  std::printf("------------------------------------------------\n");
  std::fflush(stdout);
}

// One case's figures; the line and the JSON object carry the same fields.
struct CaseResult {
  std::string name;       // "append/sync/t64"
  std::string unit = "ops";  // "ops" or "req"
  double seconds = 0;     // measured window
  std::uint64_t ops = 0;  // completed (successful) operations in the window
  std::uint64_t errors = 0;
  Percentiles latency;
  double cpu_us_per_op = 0;  // whole process CPU / ops
  double ratio = -1;         // vs baseline; < 0 when there is none
  std::string baseline;      // "rocksdb_raw", "hello"
  std::string note;          // free text appended to the line
  Json extra = Json::object();  // extra JSON fields (also summarised in `note`)

  double rate() const { return seconds > 0 ? static_cast<double>(ops) / seconds : 0; }
  double micros_per_op() const { return ops ? seconds * 1e6 / static_cast<double>(ops) : 0; }
};

// A case from a run that timed every op: any struct with `seconds`,
// `cpu_seconds` (whole process), `micros` (one latency per completed op, sorted
// here) and `errors`.
template <class Run>
CaseResult case_from_run(const std::string& name, Run& run) {
  CaseResult r;
  r.name = name;
  r.seconds = run.seconds;
  r.ops = run.micros.size();
  r.errors = run.errors;
  r.latency = percentiles(run.micros);
  r.cpu_us_per_op = r.ops ? run.cpu_seconds * 1e6 / static_cast<double>(r.ops) : 0;
  return r;
}

inline void print_case(const CaseResult& r, bool json) {
  if (json) {
    Json j;
    j["type"] = "case";
    j["case"] = r.name;
    j["micros_per_op"] = r.micros_per_op();
    j[r.unit + "_per_sec"] = r.rate();
    j["seconds"] = r.seconds;
    j[r.unit] = r.ops;
    j["errors"] = r.errors;
    j["p50_us"] = r.latency.p50_us;
    j["p99_us"] = r.latency.p99_us;
    j["max_us"] = r.latency.max_us;
    j["cpu_us_per_op"] = r.cpu_us_per_op;
    if (r.ratio >= 0) {
      j["ratio"] = r.ratio;
      j["baseline"] = r.baseline;
    }
    for (const auto& [k, v] : r.extra.items()) j[k] = v;
    std::cout << j.dump() << std::endl;
    return;
  }
  std::printf("%-22s: %8.1f micros/op %8.0f %s/sec %5.1f s %9llu %s  p50 %-9s p99 %-9s cpu %5.1f us/%s",
              r.name.c_str(), r.micros_per_op(), r.rate(), r.unit.c_str(), r.seconds,
              static_cast<unsigned long long>(r.ops), r.unit.c_str(), human_micros(r.latency.p50_us).c_str(),
              human_micros(r.latency.p99_us).c_str(), r.cpu_us_per_op, r.unit == "ops" ? "op" : "req");
  if (r.ratio >= 0) std::printf("; %.2fx %s", r.ratio, r.baseline.c_str());
  if (r.errors) std::printf("; %llu ERRORS", static_cast<unsigned long long>(r.errors));
  if (!r.note.empty()) std::printf("  (%s)", r.note.c_str());
  std::printf("\n");
  std::fflush(stdout);
}

// Flushes every memtable and waits until no flush or compaction has run for a
// second, so sizes are of SST files and reads go through the sorted runs as
// they would on a long-running server. `compact`: also compacts every family
// fully first. Not "compaction-pending": hist's universal compaction keeps it
// at 1 while it holds two runs it will not merge.
inline void settle(const sl::Store& store, bool compact = false) {
  rocksdb::DB* db = store.db();
  std::vector<rocksdb::ColumnFamilyHandle*> cfs = {store.events(), store.proj(), store.hist(), store.idx()};
  rocksdb::FlushOptions fo;
  fo.wait = true;
  db->Flush(fo, cfs);
  if (compact) {
    rocksdb::CompactRangeOptions co;
    for (auto* cf : cfs) db->CompactRange(co, cf, nullptr, nullptr);
  }
  for (int quiet = 0, waited = 0; quiet < 10 && waited < 3600 * 10; ++waited) {
    std::uint64_t running = 0, flushes = 0;
    db->GetIntProperty("rocksdb.num-running-compactions", &running);
    db->GetIntProperty("rocksdb.num-running-flushes", &flushes);
    quiet = running + flushes == 0 ? quiet + 1 : 0;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

}  // namespace sl::bench
