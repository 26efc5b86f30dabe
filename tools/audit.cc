#include "tools/audit.h"

#include <stdlib.h>

#include <filesystem>
#include <istream>
#include <ostream>
#include <thread>

#include "events/codec.h"
#include "events/time_format.h"
#include "projections/ledger.h"
#include "projections/replay.h"
#include "projections/rows.h"

namespace sl::audit {
namespace {

Report io_error(const Error& e) {
  return Report{2, Json{{"ok", false}, {"error", e.code + ": " + e.message}}, e.code + ": " + e.message + "\n"};
}

ScanOptions scan_options(const Store& store, const Progress& progress, std::uint64_t head) {
  ScanOptions options;
  options.progress_every = 50000;
  if (progress) options.progress = [progress, head](std::uint64_t seq) { progress(seq, head); };
  return options;
}

std::uint64_t head_seq(const Store& store) {
  auto h = store.head();
  return h ? h->seq : 0;
}

std::string projection_of(const std::string& key) { return key.substr(0, key.find('/')); }

}  // namespace

Result<std::unique_ptr<AuditStore>> AuditStore::open(const std::string& dir) {
  std::error_code ec;
  if (!std::filesystem::exists(std::filesystem::path(dir) / "CURRENT", ec)) {
    return make_error(503, "ServiceUnavailable", "no database at " + dir);
  }
  std::string scratch_template = (std::filesystem::temp_directory_path() / "shareledger-audit-XXXXXX").string();
  if (!mkdtemp(scratch_template.data())) return make_error(503, "ServiceUnavailable", "cannot create a scratch dir");
  std::unique_ptr<AuditStore> out(new AuditStore());
  out->scratch_ = scratch_template;
  StoreOptions options;
  options.secondary_dir = out->scratch_;
  auto store = Store::open(dir, OpenMode::kSecondary, options);
  if (!store) return store.error();
  out->store_ = std::move(*store);
  return out;
}

AuditStore::~AuditStore() {
  store_.reset();
  std::error_code ec;
  std::filesystem::remove_all(scratch_, ec);
}

Report verify(const Store& store, const Progress& progress) {
  const ChainCheck check = check_chain(store, scan_options(store, progress, head_seq(store)));
  Json out{{"events", check.checked}, {"head_seq", check.checked}, {"head_hash", check.head_hash}};
  if (check.problem) {
    out["ok"] = false;
    out["bad_seq"] = check.bad_seq;
    out["error"] = check.problem->message;
    return Report{1, out, "FAILED at " + check.problem->message + "\n"};
  }
  out["ok"] = true;
  return Report{0, out,
                "OK events=" + std::to_string(check.checked) + " head_seq=" + std::to_string(check.checked) +
                    " head_hash=" + check.head_hash + "\n"};
}

Report replay_diff(const Store& store, const Progress& progress) {
  // One snapshot for both sides, so a running writer cannot skew the diff.
  const rocksdb::Snapshot* snapshot = store.snapshot();
  auto head = store.head(snapshot);
  if (!head) {
    store.release_snapshot(snapshot);
    return io_error(head.error());
  }
  ScanOptions options = scan_options(store, progress, head->seq);
  options.to_seq = head->seq;
  auto state = replay(store, options);
  if (!state) {
    store.release_snapshot(snapshot);
    return Report{1, Json{{"ok", false}, {"error", state.error().message}}, "FAILED: " + state.error().message + "\n"};
  }
  // The fold is over and a core is free: read the stored rows on a second
  // thread while this one derives the rebuilt ones (~0.3 s each at 1 M events).
  std::vector<std::pair<std::string, std::string>> stored_rows;
  rocksdb::Status read_status;
  std::jthread stored_reader([&] {
    rocksdb::ReadOptions ro;
    ro.snapshot = snapshot;
    ro.fill_cache = false;  // one pass: leave the cache to the server's reads
    std::unique_ptr<rocksdb::Iterator> it(store.db()->NewIterator(ro, store.proj()));
    for (it->SeekToFirst(); it->Valid(); it->Next()) stored_rows.emplace_back(it->key().ToString(), it->value().ToString());
    read_status = it->status();
  });
  const Rows rebuilt = all_rows(*state);
  stored_reader.join();
  if (!read_status.ok()) {
    store.release_snapshot(snapshot);
    return io_error(make_error(503, "ServiceUnavailable", "read stored rows: " + read_status.ToString()));
  }
  Json differences = Json::array();
  std::string text;
  auto report = [&](const std::string& key, const std::optional<std::string>& stored,
                    const std::optional<std::string>& fresh) {
    differences.push_back({{"projection", projection_of(key)}, {"key", key},
                           {"stored", stored ? Json(*stored) : Json(nullptr)},
                           {"rebuilt", fresh ? Json(*fresh) : Json(nullptr)}});
    text += "DIFF " + key + "\n  stored:  " + stored.value_or("(absent)") + "\n  rebuilt: " + fresh.value_or("(absent)") + "\n";
  };
  auto expected = rebuilt.begin();
  for (const auto& [key, value] : stored_rows) {
    while (expected != rebuilt.end() && expected->first < key) {
      report(expected->first, std::nullopt, expected->second);
      ++expected;
    }
    if (expected != rebuilt.end() && expected->first == key) {
      if (expected->second != value) report(key, value, expected->second);
      ++expected;
    } else {
      report(key, value, std::nullopt);
    }
  }
  for (; expected != rebuilt.end(); ++expected) report(expected->first, std::nullopt, expected->second);
  store.release_snapshot(snapshot);
  bool ok = differences.empty();
  Json out{{"ok", ok}, {"events", head->seq}, {"rows", stored_rows.size()}, {"differences", differences}};
  text += (ok ? "OK" : "FAILED") + std::string(" events=") + std::to_string(head->seq) + " rows=" +
          std::to_string(stored_rows.size()) + " differences=" + std::to_string(differences.size()) + "\n";
  return Report{ok ? 0 : 1, out, text};
}

Report replay_to(const Store& store, std::uint64_t seq, const Progress& progress) {
  std::uint64_t head = head_seq(store);
  if (seq > head) return Report{2, Json{{"ok", false}, {"error", "seq beyond head"}}, "seq beyond head\n"};
  ScanOptions options = scan_options(store, progress, seq);
  options.to_seq = seq;
  auto state = replay(store, options);
  if (!state) return Report{1, Json{{"ok", false}, {"error", state.error().message}}, state.error().message + "\n"};
  Json rows = Json::object();
  for (const auto& [key, value] : all_rows(*state)) {
    Json parsed = Json::parse(value, nullptr, false);
    rows[key] = parsed.is_discarded() ? Json(value) : parsed;
  }
  Json out{{"ok", true}, {"seq", seq}, {"rows", rows}};
  return Report{0, out, out.dump(2) + "\n"};
}

Report history(const Store& store, const std::string& entity) {
  auto seqs = store.entity_events(entity, ~0ull, ~std::size_t{0});
  if (!seqs) return io_error(seqs.error());
  Json events = Json::array();
  std::string text;
  for (std::uint64_t seq : *seqs) {
    auto bytes = store.event_bytes(seq);
    if (!bytes) return io_error(bytes.error());
    if (!*bytes) continue;
    Json e = Json::parse(**bytes);
    text += "#" + std::to_string(seq) + " " + rfc3339_micros(e["time"].get<std::int64_t>()) + " " +
            e["type"].get<std::string>() + " actor=" + e["actor"]["account_id"].get<std::string>() + " " +
            e["data"].dump() + "\n";
    events.push_back(std::move(e));
  }
  return Report{0, Json{{"entity", entity}, {"events", events}}, text};
}

Report as_of(const Store& store, std::uint64_t seq, const std::string& kind, const std::string& id) {
  if (seq > head_seq(store)) return Report{2, Json{{"error", "seq beyond head"}}, "seq beyond head\n"};
  auto view = rows_as_of(store, seq);
  Viewer admin{true, ""};
  Json out{{"seq", seq}, {"kind", kind}, {"id", id}};
  if (kind == "image") {
    out["image"] = row_json(*view, "img/" + id).value_or(Json(nullptr));
    auto permissions = image_permissions(*view, id, admin);
    out["permissions"] = permissions ? *permissions : Json(nullptr);
    auto recipients = image_recipients(*view, id, admin);
    out["recipients"] = recipients ? *recipients : Json(nullptr);
    auto launchers = image_launchers(*view, id, admin);
    out["launchers"] = launchers ? *launchers : Json(nullptr);
  } else if (kind == "account") {
    out["account"] = row_json(*view, "acct/" + id).value_or(Json(nullptr));
    Json grants = Json::array();
    view->scan("agrant/" + id + "/", [&](std::string_view, std::string_view value) {
      grants.push_back(Json::parse(value));
      return true;
    });
    out["grants"] = grants;
  } else {
    auto instance = instance_status(*view, id, admin);
    out["instance"] = instance ? *instance : Json(nullptr);
  }
  return Report{0, out, out.dump(2) + "\n"};
}

Result<std::uint64_t> seq_at(const Store& store, const std::string& rfc3339) {
  auto micros = parse_rfc3339(rfc3339);
  if (!micros) return make_error(400, "InvalidParameter", "time must be RFC 3339, e.g. 2026-12-01T08:00:00Z");
  return store.seq_at_time(*micros);
}

Report export_log(const Store& store, std::uint64_t after_seq, std::ostream& out, const Progress& progress) {
  std::uint64_t head = head_seq(store), written = 0;
  auto status = store.scan_events(after_seq + 1, [&](std::uint64_t seq, std::string_view bytes) {
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.put('\n');
    ++written;
    if (progress && seq % 50000 == 0) progress(seq, head);
    return true;
  }, nullptr, Store::Caching::kBypass);
  if (!status) return io_error(status.error());
  return Report{0, Json{{"ok", true}, {"exported", written}}, "exported " + std::to_string(written) + " events\n"};
}

Report import_log(const std::string& dir, std::istream& in, const Progress& progress) {
  std::error_code ec;
  if (std::filesystem::exists(dir, ec) && !std::filesystem::is_empty(dir, ec)) {
    return Report{2, Json{{"ok", false}, {"error", "target is not empty"}}, "refusing: " + dir + " is not empty\n"};
  }
  std::uint64_t imported = 0;
  {
    auto store = Store::open(dir, OpenMode::kReadWrite);
    if (!store) return io_error(store.error());
    std::string prev_hash(kGenesisHash), line;
    rocksdb::WriteBatch batch;
    auto fail = [&](std::uint64_t seq, const std::string& what) {
      return Report{1, Json{{"ok", false}, {"bad_seq", seq}, {"error", what}},
                    "FAILED at seq " + std::to_string(seq) + ": " + what + "\n"};
    };
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      std::uint64_t seq = imported + 1;
      auto hash = verify_event_bytes(line, prev_hash);
      if (!hash) return fail(seq, hash.error().message);
      auto e = decode_event(line);
      if (!e) return fail(seq, e.error().message);
      if (e->seq != seq) return fail(seq, "expected seq " + std::to_string(seq) + ", found " + std::to_string(e->seq));
      batch.Put(store->get()->events(), be64(seq), line);
      prev_hash = *hash;
      ++imported;
      if (batch.GetDataSize() > (16 << 20)) {
        if (auto s = (*store)->write(batch, false); !s) return io_error(s.error());
        batch.Clear();
      }
      if (progress && seq % 50000 == 0) progress(seq, 0);
    }
    if (auto s = (*store)->write(batch, true); !s) return io_error(s.error());
  }
  // Opening a ledger with no projection version rebuilds rows and indexes from the log.
  auto ledger = Ledger::open(dir);
  if (!ledger) return io_error(ledger.error());
  Head head = (*ledger)->head();
  return Report{0, Json{{"ok", true}, {"imported", imported}, {"head_seq", head.seq}, {"head_hash", head.hash}},
                "imported " + std::to_string(imported) + " events head_hash=" + head.hash + "\n"};
}

}  // namespace sl::audit
