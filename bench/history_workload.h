// HistoryWorkload: writes a synthetic ledger history of about N events through
// Ledger::submit(), for the benchmarks that need a big log (as_of_bench,
// audit_bench). Header-only.
//
// Shape, chosen to look like a real account population rather than one image
// with an ever-growing history:
//   - `accounts` accounts (70 % cn, 30 % intl), each registered (2 events) and
//     running one base instance from a system image (1 event);
//   - `active` custom images alive at any time, each made from its owner's base
//     instance and living for 15..54 steps. A step on a random active image is
//     one of: share/unshare (add 1-3 accounts, remove 0-2 recipients; at most
//     50 account recipients), IsPublic toggle, a recipient (or the owner)
//     launching an instance from it, or deleting / re-imaging one of those
//     instances. At the end of its life the image is unshared from everyone,
//     made private, force-deleted (instances still on it become reinit-blocked)
//     and replaced by a new image of a random owner.
// So every image's own history (its grant/<image>/ rows and their versions)
// stays bounded (~50 events) however long the log grows; only the number of
// images grows with N. Organization events are left out: their cost is covered
// by the tests and they would not change the per-image picture.
//
// Commands are submitted without waiting, up to `window` in flight: the single
// writer then takes up to kMaxGroupJobs jobs per synced WriteBatch, which is
// the fastest legitimate way to build a big log (every event still goes through
// decide, the hash chain, evolve and the projection rows). The producer keeps an
// exact model of what it asked for, so no command is rejected; `errors` says if
// one was.
//
// Thread safety: generate_history() runs on the caller's thread; callbacks run
// on the ledger's writer thread and touch only the mutex-guarded fields.
#pragma once

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "events/catalog.h"
#include "projections/ledger.h"

namespace sl::bench {

struct WorkloadOptions {
  std::uint64_t events = 1000000;  // stop once the planned events reach this
  std::uint64_t seed = 7;
  std::size_t window = 16384;      // commands in flight
  std::size_t accounts = 0;        // 0: clamp(events / 100, 100, 5000)
  std::size_t active = 0;          // 0: clamp(events / 500, 20, 2000)
  std::function<void(std::uint64_t events, double seconds)> progress;  // about every 5 s
};

// One image's life, for queries: the seqs it was created and deleted at
// (deleted 0 = still alive) and a few accounts it was ever shared with.
struct ImageLife {
  std::string id;
  std::uint32_t owner = 0;
  std::uint64_t created = 0, deleted = 0;
  std::vector<std::uint32_t> recipients;  // up to 4
};

struct Workload {
  std::vector<std::string> accounts;
  std::vector<ImageLife> images;
  std::uint64_t planned_events = 0, commands = 0, errors = 0;
  std::string first_error;
  double seconds = 0;
};

namespace detail {

class HistoryProducer {
 public:
  HistoryProducer(Ledger& ledger, const WorkloadOptions& options) : ledger_(ledger), o_(options), rng_(options.seed) {
    if (o_.accounts == 0) o_.accounts = std::clamp<std::size_t>(o_.events / 100, 100, 5000);
    if (o_.active == 0) o_.active = std::clamp<std::size_t>(o_.events / 500, 20, 2000);
    for (const auto& c : builtin_catalog(ledger.limits().regions)) {
      if (c.region == kRegion && c.kind == "system") system_image_ = c.image_id;
    }
  }

  Workload run() {
    auto t0 = std::chrono::steady_clock::now();
    start_ = last_progress_ = t0;
    for (std::size_t a = 0; a < o_.accounts; ++a) {
      std::string id = std::string(1, "123456789"[pick(9)]) + chars("0123456789", 15);
      out_.accounts.push_back(id);
      send(RegisterAccount{id, chance(0.3) ? "intl" : "cn", "LTAI" + chars(kAlnum, 20)}, "", 2);
      std::string instance = "i-" + chars(kLower, 20);
      base_instance_.push_back(instance);
      send(RunInstances{id, kRegion, system_image_, {instance}, {"d-" + chars(kLower, 20)}}, id, 1);
    }
    for (std::size_t i = 0; i < o_.active; ++i) active_.push_back(new_image());
    while (out_.planned_events < o_.events) step(active_[pick(active_.size())]);
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return in_flight_ == 0; });
      for (const auto& [index, deleted, seq] : lifetimes_) {
        (deleted ? out_.images[index].deleted : out_.images[index].created) = seq;
      }
      out_.errors = errors_;
      out_.first_error = first_error_;
    }
    out_.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return std::move(out_);
  }

 private:
  static constexpr const char* kRegion = "cn-hangzhou";
  static constexpr std::string_view kLower = "0123456789abcdefghijklmnopqrstuvwxyz";
  static constexpr std::string_view kAlnum = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

  struct Active {
    std::uint32_t index = 0;  // into out_.images
    std::string id;
    std::uint32_t owner = 0;
    int steps_left = 0;
    bool is_public = false;
    std::vector<std::uint32_t> recipients;                          // account-id grants now
    std::vector<std::pair<std::string, std::uint32_t>> instances;  // (instance, owner) running it
  };

  std::size_t pick(std::size_t n) { return static_cast<std::size_t>(rng_() % n); }
  bool chance(double p) { return static_cast<double>(rng_() % 1000000) < p * 1e6; }
  std::string chars(std::string_view alphabet, int n) {
    std::string s(static_cast<std::size_t>(n), ' ');
    for (auto& c : s) c = alphabet[pick(alphabet.size())];
    return s;
  }
  const std::string& account(std::uint32_t a) const { return out_.accounts[a]; }

  // kind: 0 plain, 1 image created, 2 image deleted (records the seq for `image`).
  void send(Command command, const std::string& caller, std::uint64_t events, int kind = 0, std::uint32_t image = 0) {
    out_.planned_events += events;
    ++out_.commands;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return in_flight_ < o_.window; });
      ++in_flight_;
    }
    ledger_.submit(std::move(command), CommandContext{Actor{caller, ""}, "", ""},
                   [this, kind, image](Result<Commit> r) {
                     std::lock_guard lock(mu_);
                     --in_flight_;
                     if (!r.ok()) {
                       if (errors_++ == 0) first_error_ = std::to_string(r.error().http) + " " + r.error().code + ": " + r.error().message;
                     } else if (kind != 0) {
                       lifetimes_.emplace_back(image, kind == 2, r->seq);
                     }
                     cv_.notify_one();
                   });
    if (o_.progress && (out_.commands & 1023) == 0) {
      auto now = std::chrono::steady_clock::now();
      if (now - last_progress_ > std::chrono::seconds(5)) {
        last_progress_ = now;
        o_.progress(out_.planned_events, std::chrono::duration<double>(now - start_).count());
      }
    }
  }

  Active new_image() {
    Active a;
    a.index = static_cast<std::uint32_t>(out_.images.size());
    a.id = "m-" + chars(kLower, 20);
    a.owner = static_cast<std::uint32_t>(pick(out_.accounts.size()));
    a.steps_left = 15 + static_cast<int>(pick(40));
    out_.images.push_back(ImageLife{a.id, a.owner, 0, 0, {}});
    send(CreateImage{account(a.owner), kRegion, base_instance_[a.owner], a.id, "bench"}, account(a.owner), 1, 1,
         a.index);
    return a;
  }

  void step(Active& a) {
    if (a.steps_left-- <= 0) {
      retire(a);
      a = new_image();
      return;
    }
    double r = static_cast<double>(pick(1000)) / 1000;
    if (r < 0.62 || (r >= 0.85 && a.instances.empty())) {
      share(a);
    } else if (r < 0.70) {
      a.is_public = !a.is_public;
      send(ModifyImageSharePermission{account(a.owner), kRegion, a.id, {}, {}, a.is_public}, account(a.owner), 1);
    } else if (r < 0.85) {
      if (a.instances.size() >= 4) return share(a);
      std::uint32_t launcher = a.owner;
      if (!a.recipients.empty() && chance(0.8)) launcher = a.recipients[pick(a.recipients.size())];
      std::string instance = "i-" + chars(kLower, 20);
      send(RunInstances{account(launcher), kRegion, a.id, {instance}, {"d-" + chars(kLower, 20)}}, account(launcher), 1);
      a.instances.emplace_back(instance, launcher);
    } else {
      std::size_t i = pick(a.instances.size());
      auto [instance, owner] = a.instances[i];
      a.instances.erase(a.instances.begin() + static_cast<long>(i));
      if (chance(0.3)) {
        send(ReplaceSystemDisk{account(owner), instance, system_image_, "d-" + chars(kLower, 20)}, account(owner), 1);
      }
      send(DeleteInstance{account(owner), instance}, account(owner), 1);
    }
  }

  void share(Active& a) {
    ModifyImageSharePermission m{account(a.owner), kRegion, a.id, {}, {}, std::nullopt};
    std::vector<std::uint32_t> removed;
    if (a.recipients.size() >= 4) {
      for (std::size_t n = pick(3); n > 0; --n) {
        std::size_t i = pick(a.recipients.size());
        removed.push_back(a.recipients[i]);
        m.remove_accounts.push_back(account(a.recipients[i]));
        a.recipients.erase(a.recipients.begin() + static_cast<long>(i));
      }
    }
    for (std::size_t n = 1 + pick(3); n > 0 && a.recipients.size() < 50; --n) {
      auto b = static_cast<std::uint32_t>(pick(out_.accounts.size()));
      if (b == a.owner || std::count(a.recipients.begin(), a.recipients.end(), b) ||
          std::count(removed.begin(), removed.end(), b)) {
        continue;
      }
      a.recipients.push_back(b);
      m.add_accounts.push_back(account(b));
      auto& seen = out_.images[a.index].recipients;
      if (seen.size() < 4) seen.push_back(b);
    }
    std::uint64_t events = (m.remove_accounts.empty() ? 0 : 1) + (m.add_accounts.empty() ? 0 : 1);
    if (events > 0) send(std::move(m), account(a.owner), events);
  }

  // Unshare from everyone, make private, delete with Force; 20 % of the
  // instances on it keep running (reinit-blocked from then on).
  void retire(Active& a) {
    for (const auto& [instance, owner] : a.instances) {
      if (chance(0.8)) send(DeleteInstance{account(owner), instance}, account(owner), 1);
    }
    for (std::size_t at = 0; at < a.recipients.size() || (at == 0 && a.is_public); at += 10) {
      ModifyImageSharePermission m{account(a.owner), kRegion, a.id, {}, {}, std::nullopt};
      for (std::size_t i = at; i < std::min(at + 10, a.recipients.size()); ++i) {
        m.remove_accounts.push_back(account(a.recipients[i]));
      }
      std::uint64_t events = m.remove_accounts.empty() ? 0 : 1;
      if (at == 0 && a.is_public) {
        m.is_public = false;
        ++events;
      }
      send(std::move(m), account(a.owner), events);
    }
    send(DeleteImage{account(a.owner), kRegion, a.id, true}, account(a.owner), 1, 2, a.index);
  }

  Ledger& ledger_;
  WorkloadOptions o_;
  std::mt19937_64 rng_;
  std::string system_image_;
  std::vector<std::string> base_instance_;
  std::vector<Active> active_;
  Workload out_;
  std::chrono::steady_clock::time_point start_, last_progress_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::size_t in_flight_ = 0;                                                   // guarded by mu_
  std::uint64_t errors_ = 0;                                                    // guarded by mu_
  std::string first_error_;                                                     // guarded by mu_
  std::vector<std::tuple<std::uint32_t, bool, std::uint64_t>> lifetimes_;       // guarded by mu_
};

}  // namespace detail

// Writes the history and waits until every command is durable.
// REQUIRES: `ledger` is freshly opened on an empty directory.
inline Workload generate_history(Ledger& ledger, const WorkloadOptions& options) {
  return detail::HistoryProducer(ledger, options).run();
}

}  // namespace sl::bench
