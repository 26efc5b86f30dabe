// Durability under SIGKILL (SPEC §2.2).
//
// The parent forks a child that opens a Ledger on one directory and appends
// from several threads. After each execute() returns OK, the child writes one
// line per acknowledged event to a pipe: seq, type, SHA-256 of the payload,
// chain hash. The parent kills the child with SIGKILL at a random moment, then
// opens the Ledger itself and checks that every acknowledged event is there
// with the same content, the chain verifies, and the rows equal a replay. The
// directory is reused, so history accumulates across cycles.
//
// fork() in a process that may already have threads (RocksDB keeps background
// threads alive after an earlier test closed its database) is only safe up to
// exec: the child therefore calls only async-signal-safe functions and execs
// this same test binary, where a global test environment sees
// SHARELEDGER_CRASH_CHILD_DIR and runs the writer instead of any test.
//
// Seed: printed at start; SHARELEDGER_SEED overrides it.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "events/catalog.h"
#include "events/codec.h"
#include "projections/ledger.h"
#include "projections/replay.h"
#include "projections/rows.h"
#include "projections/support.h"

extern char** environ;

namespace sl {
namespace {

constexpr std::uint64_t kDefaultSeed = 7302;
constexpr int kCycles = 24;
constexpr int kWriterThreads = 6;
constexpr const char* kChildDirEnv = "SHARELEDGER_CRASH_CHILD_DIR";
constexpr const char* kChildFdEnv = "SHARELEDGER_CRASH_CHILD_FD";
constexpr const char* kChildCycleEnv = "SHARELEDGER_CRASH_CHILD_CYCLE";

using test::describe;

// ---- the child: append until killed -------------------------------------------

// One write() per call: lines stay below PIPE_BUF, so threads never interleave.
void send(int fd, const std::string& text) {
  if (::write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size())) ::_exit(5);
}

// Ids in the SPEC forms, unique per (cycle, thread, counter) so no cycle reuses
// an id a killed predecessor may have made durable without acknowledging it.
class ChildIds {
 public:
  ChildIds(int cycle, int thread) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "c%03dt%02d", cycle, thread);
    tag_ = buf;
    std::snprintf(buf, sizeof buf, "9%03d%02d", cycle, thread);
    digits_ = buf;
  }
  std::string account() { return digits_ + number(10); }
  std::string access_key() { return "LTAI" + tag_ + number(13); }
  std::string image() { return "m-" + tag_ + number(13); }
  std::string instance() { return "i-" + tag_ + number(13); }
  std::string disk() { return "d-" + tag_ + number(13); }

 private:
  std::string number(int width) {
    std::string n = std::to_string(++counter_);
    return std::string(width - n.size(), '0') + n;
  }
  std::string tag_, digits_;
  std::uint64_t counter_ = 0;
};

void writer_loop(Ledger& ledger, int fd, int cycle, int thread) {
  ChildIds ids(cycle, thread);
  const auto& regions = ledger.limits().regions;
  // The last region is seeded last: a catalog cut short by a crash shows here.
  const std::string region = regions[(regions.size() - 1 + thread) % regions.size()];
  std::string system_image;
  for (const auto& seed : builtin_catalog(regions)) {
    if (seed.region == region && seed.kind == "system") system_image = seed.image_id;
  }
  auto run = [&](Command command) {
    std::string name = std::to_string(command.index());
    auto r = ledger.execute(std::move(command));
    if (!r.ok()) {
      send(fd, "fail command#" + name + " " + describe(r.error()) + "\n");
      ::_exit(4);
    }
    std::string lines;
    for (const Event& e : r->events) {
      lines += "ack " + std::to_string(e.seq) + " " + std::string(e.type()) + " " + sha256_hex(encode_data(e.data)) +
               " " + e.hash + "\n";
    }
    if (!lines.empty()) send(fd, lines);
  };
  const std::string a = ids.account(), b = ids.account();
  run(RegisterAccount{a, "cn", ids.access_key()});
  run(RegisterAccount{b, "cn", ids.access_key()});
  for (int round = 0;; ++round) {
    if (round % 5 == 4) run(RegisterAccount{ids.account(), "intl", ids.access_key()});
    const std::string base = ids.instance(), image = ids.image(), on_image = ids.instance();
    run(RunInstances{a, region, system_image, {base}, {ids.disk()}});
    run(CreateImage{a, region, base, image, "nightly"});
    run(ModifyImageSharePermission{a, region, image, {b}, {}, std::nullopt});
    run(RunInstances{b, region, image, {on_image}, {ids.disk()}});
    run(ModifyImageSharePermission{a, region, image, {}, {b}, std::nullopt});  // blocks b's instance
    run(DeleteImage{a, region, image, true});
    run(DeleteInstance{b, on_image});
    run(DeleteInstance{a, base});
  }
}

[[noreturn]] void child_main(const std::string& dir, int fd, int cycle) {
  auto ledger = Ledger::open(dir);
  if (!ledger.ok()) {
    send(fd, "fail open " + describe(ledger.error()) + "\n");
    ::_exit(2);
  }
  send(fd, "ready\n");
  for (int t = 0; t < kWriterThreads; ++t) {
    std::thread([&ledger, fd, cycle, t] { writer_loop(**ledger, fd, cycle, t); }).detach();
  }
  std::this_thread::sleep_for(std::chrono::seconds(30));  // the parent kills us long before
  send(fd, "fail never killed\n");
  ::_exit(3);
}

// Runs the child instead of the tests when this binary was exec'd as one.
class CrashChildEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    const char* dir = std::getenv(kChildDirEnv);
    if (!dir) return;
    child_main(dir, std::atoi(std::getenv(kChildFdEnv)), std::atoi(std::getenv(kChildCycleEnv)));
  }
};
[[maybe_unused]] ::testing::Environment* const kCrashChild =
    ::testing::AddGlobalTestEnvironment(new CrashChildEnvironment);

// ---- the parent -----------------------------------------------------------------

struct Ack {
  std::string type, data_sha256, hash;
  bool operator==(const Ack&) const = default;
};

// Everything prepared before fork(): between fork and exec the child may only
// make async-signal-safe calls.
struct Spawn {
  std::vector<std::string> strings;
  std::vector<char*> argv, envp;
  std::string exe;

  Spawn(const std::string& dir, int fd, int cycle) {
    char path[4096];
    ssize_t n = ::readlink("/proc/self/exe", path, sizeof path - 1);
    exe = n > 0 ? std::string(path, static_cast<std::size_t>(n)) : "/proc/self/exe";
    std::vector<std::string> args = {exe, "--gtest_filter=CrashTest.*"};
    std::vector<std::string> env;
    for (char** e = environ; *e; ++e) {
      std::string_view v(*e);
      if (!v.starts_with(kChildDirEnv) && !v.starts_with(kChildFdEnv) && !v.starts_with(kChildCycleEnv)) {
        env.emplace_back(v);
      }
    }
    env.push_back(std::string(kChildDirEnv) + "=" + dir);
    env.push_back(std::string(kChildFdEnv) + "=" + std::to_string(fd));
    env.push_back(std::string(kChildCycleEnv) + "=" + std::to_string(cycle));
    strings.reserve(args.size() + env.size());
    for (auto& a : args) argv.push_back(strings.emplace_back(std::move(a)).data());
    argv.push_back(nullptr);
    for (auto& e : env) envp.push_back(strings.emplace_back(std::move(e)).data());
    envp.push_back(nullptr);
  }
};

struct CycleResult {
  std::vector<std::string> lines;  // everything the child said
  int status = 0;
  bool was_ready = false;
};

using Clock = std::chrono::steady_clock;

// Forks the writer, kills it `delay` after it is ready (or after the spawn when
// `from_spawn`), and collects what it acknowledged.
CycleResult run_child(const std::string& dir, int cycle, std::chrono::milliseconds delay, bool from_spawn) {
  CycleResult out;
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    ADD_FAILURE() << "pipe2: " << std::strerror(errno);
    return out;
  }
  Spawn spawn(dir, fds[1], cycle);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::fcntl(fds[1], F_SETFD, 0);  // the write end survives exec
    int null = ::open("/dev/null", O_WRONLY);
    if (null >= 0) ::dup2(null, STDOUT_FILENO);  // the child's gtest banner
    ::execve(spawn.exe.c_str(), spawn.argv.data(), spawn.envp.data());
    ::_exit(127);
  }
  ::close(fds[1]);
  if (pid < 0) {
    ADD_FAILURE() << "fork: " << std::strerror(errno);
    ::close(fds[0]);
    return out;
  }
  const auto spawned = Clock::now();
  auto deadline = from_spawn ? spawned + delay : Clock::time_point::max();
  const auto give_up = spawned + std::chrono::seconds(60);
  bool killed = false;
  std::string pending;
  char buf[65536];
  for (;;) {
    auto now = Clock::now();
    if (!killed && (now >= deadline || now >= give_up)) {
      ::kill(pid, SIGKILL);
      killed = true;
    }
    int timeout_ms = -1;
    if (!killed) {
      auto until = std::min(deadline, give_up);
      timeout_ms = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(until - now).count()) + 1;
    }
    pollfd p{fds[0], POLLIN, 0};
    int ready = ::poll(&p, 1, timeout_ms);
    if (ready < 0 && errno == EINTR) continue;
    if (ready == 0) continue;
    ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // EOF: the child is gone
    pending.append(buf, static_cast<std::size_t>(n));
    for (std::size_t nl; (nl = pending.find('\n')) != std::string::npos;) {
      std::string line = pending.substr(0, nl);
      pending.erase(0, nl + 1);
      if (line == "ready" && !out.was_ready) {
        out.was_ready = true;
        if (!from_spawn) deadline = Clock::now() + delay;
      }
      out.lines.push_back(std::move(line));
    }
  }
  ::close(fds[0]);
  if (!killed) ::kill(pid, SIGKILL);
  while (::waitpid(pid, &out.status, 0) < 0 && errno == EINTR) {
  }
  return out;
}

// After a crash: every acknowledged event is there unchanged, the chain
// verifies, the rows equal a replay and the catalog is complete.
void verify_after_crash(const std::string& dir, const std::map<std::uint64_t, Ack>& acked, int cycle,
                        std::uint64_t* head_out, std::uint64_t* lost_out) {
  auto ledger = Ledger::open(dir);
  ASSERT_TRUE(ledger.ok()) << "cycle " << cycle << ": " << describe(ledger.error());
  const Store& store = (*ledger)->store();
  const std::uint64_t head = (*ledger)->head().seq;
  *head_out = head;
  std::uint64_t lost = 0;
  for (const auto& [seq, ack] : acked) {
    auto bytes = store.event_bytes(seq);
    ASSERT_TRUE(bytes.ok()) << describe(bytes.error());
    if (!*bytes) {
      ++lost;
      ADD_FAILURE() << "cycle " << cycle << ": acknowledged seq " << seq << " (" << ack.type << ") is gone; head "
                    << head;
      continue;
    }
    auto e = decode_event(**bytes);
    ASSERT_TRUE(e.ok()) << "seq " << seq << ": " << describe(e.error());
    Ack stored{std::string(e->type()), sha256_hex(encode_data(e->data)), e->hash};
    EXPECT_EQ(stored, ack) << "cycle " << cycle << ": acknowledged seq " << seq << " changed: " << **bytes;
  }
  *lost_out += lost;
  EXPECT_EQ(lost, 0u) << "cycle " << cycle;
  std::uint64_t verified = 0;
  ScanOptions hashes;
  hashes.hash_only = true;
  auto chain = scan_verified(store, hashes, [&](const Event&, std::string_view) {
    ++verified;
    return true;
  });
  ASSERT_TRUE(chain.ok()) << "cycle " << cycle << ": " << describe(chain.error());
  EXPECT_EQ(verified, head);
  auto state = replay(store, ScanOptions{});
  ASSERT_TRUE(state.ok()) << describe(state.error());
  const Rows rows = test::scan_family(store, store.proj());
  EXPECT_TRUE(all_rows(*state) == rows) << "cycle " << cycle << ": rows differ from a replay";
  // The versioned rows agree too: as of the head they are the current rows.
  EXPECT_TRUE(test::view_rows(*rows_as_of(store, head)) == rows) << "cycle " << cycle << ": hist as of the head differs from proj";
  for (const auto& seed : builtin_catalog((*ledger)->limits().regions)) {
    auto row = store.get(store.proj(), "img/" + seed.image_id);
    EXPECT_TRUE(row.ok() && *row) << "cycle " << cycle << ": catalog image " << seed.image_id << " missing";
  }
}

TEST(CrashTest, SigkillNeverLosesAnAcknowledgedWrite) {
  const std::uint64_t seed = test::env_number("SHARELEDGER_SEED", kDefaultSeed);
  std::cout << "seed=" << seed << " (set SHARELEDGER_SEED to replay another run)" << std::endl;
  std::mt19937_64 rng(seed);
  const std::string dir = testing::TempDir() + "shareledger_crash_" + std::to_string(::getpid());
  std::filesystem::remove_all(dir);
  const auto t0 = Clock::now();

  std::map<std::uint64_t, Ack> acked;  // across all cycles
  int early_kills = 0, killed_before_ready = 0;
  std::uint64_t head = 0, checks = 0, lost = 0;
  for (int cycle = 0; cycle < kCycles; ++cycle) {
    // Most kills land while the writers run; some at any moment from the
    // spawn on (exec, open, replay, catalog seeding in the first cycle).
    const bool from_spawn = cycle == 0 || std::uniform_int_distribution<int>(0, 4)(rng) == 0;
    const auto delay = std::chrono::milliseconds(
        from_spawn ? std::uniform_int_distribution<int>(0, 300)(rng) : std::uniform_int_distribution<int>(5, 250)(rng));
    early_kills += from_spawn;
    CycleResult r = run_child(dir, cycle, delay, from_spawn);
    killed_before_ready += !r.was_ready;
    std::size_t acks = 0;
    for (const auto& line : r.lines) {
      if (line.starts_with("fail")) ADD_FAILURE() << "cycle " << cycle << ": child: " << line;
      if (!line.starts_with("ack ")) continue;
      std::istringstream in(line.substr(4));
      std::uint64_t seq = 0;
      Ack ack;
      in >> seq >> ack.type >> ack.data_sha256 >> ack.hash;
      ASSERT_TRUE(seq > 0 && ack.hash.size() == 64) << "bad ack line: " << line;
      auto [it, fresh] = acked.emplace(seq, ack);
      // A seq acknowledged twice means an earlier acknowledged event was lost and its seq reused.
      EXPECT_TRUE(fresh || it->second == ack) << "cycle " << cycle << ": seq " << seq << " acknowledged twice";
      ++acks;
    }
    ASSERT_TRUE(WIFSIGNALED(r.status) && WTERMSIG(r.status) == SIGKILL)
        << "cycle " << cycle << ": the child ended by itself (status " << r.status << ")";
    std::uint64_t before = head;
    verify_after_crash(dir, acked, cycle, &head, &lost);
    checks += acked.size();
    std::cout << "cycle " << cycle << ": killed " << delay.count() << " ms after "
              << (from_spawn ? "spawn" : "ready") << (r.was_ready ? "" : " (before ready)") << ", " << acks
              << " events acknowledged, head " << before << " -> " << head << std::endl;
    if (::testing::Test::HasFailure()) break;
  }
  std::cout << "cycles " << kCycles << " (" << early_kills << " killed from spawn, " << killed_before_ready
            << " before ready), acknowledged events " << acked.size() << ", acknowledged-event checks " << checks
            << ", lost " << lost << ", final head " << head << ", "
            << std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count() << " ms"
            << std::endl;
  EXPECT_GT(acked.size(), 0u);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace sl
