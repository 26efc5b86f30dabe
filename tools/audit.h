// The audit operations behind shareledger-audit (SPEC §3.4), as functions so
// tests can call them directly. They only read the store (import writes a new
// one) and reuse the server's decoding, chain check (scan_verified), evolve()
// and row derivation (all_rows): there is no second implementation of a rule.
//
// Each returns a Report: exit code 0 (OK), 1 (problem found) or 2 (usage/IO),
// a JSON value for --json, and human text.
// Thread safety: independent calls are safe; a Store may be shared.
#pragma once

#include <functional>
#include <iosfwd>
#include <optional>
#include <string>

#include "projections/queries.h"
#include "storage/store.h"

namespace sl::audit {

struct Report {
  int exit_code = 0;
  Json json;
  std::string text;
};

using Progress = std::function<void(std::uint64_t seq, std::uint64_t head)>;

// A database opened for auditing without disturbing a server that may be
// writing it: a RocksDB secondary instance with a private scratch directory
// (removed on destruction). A plain read-only open can race the server's
// compactions (it may find an SST already deleted); a secondary cannot.
class AuditStore {
 public:
  // OK, or 503 ServiceUnavailable when the database cannot be opened.
  static Result<std::unique_ptr<AuditStore>> open(const std::string& dir);
  ~AuditStore();
  const Store& store() const { return *store_; }

 private:
  std::unique_ptr<Store> store_;
  std::string scratch_;
};

// Dense seqs, every hash and link, every event's schema. json: {ok, events, head_seq, head_hash[, bad_seq, error]}.
Report verify(const Store& store, const Progress& progress);

// Rebuilds every projection by replay and diffs it with the stored rows.
// json: {ok, events, rows, differences:[{projection, key, stored, rebuilt}]} (stored/rebuilt null when absent).
Report replay_diff(const Store& store, const Progress& progress);

// The rebuilt state as of `seq`: every row, as JSON {seq, rows:{key: value}}.
Report replay_to(const Store& store, std::uint64_t seq, const Progress& progress);

// Events touching an entity, oldest first.
Report history(const Store& store, const std::string& entity);

// Point-in-time answer about an image / account / instance as of `seq`.
// kind: "image" | "account" | "instance".
Report as_of(const Store& store, std::uint64_t seq, const std::string& kind, const std::string& id);

// The seq in force at an RFC 3339 time (last event with time <= T), or 2 on a bad time.
Result<std::uint64_t> seq_at(const Store& store, const std::string& rfc3339);

// Stored envelopes after `after_seq`, one per line.
Report export_log(const Store& store, std::uint64_t after_seq, std::ostream& out, const Progress& progress);

// Builds a new ledger in `dir` from NDJSON on `in`, verifying the chain as it
// goes. Refuses a non-empty `dir` and a broken chain (naming the seq).
Report import_log(const std::string& dir, std::istream& in, const Progress& progress);

}  // namespace sl::audit
