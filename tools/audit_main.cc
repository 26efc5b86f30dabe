// shareledger-audit: verify, replay, history, as-of, export and import (SPEC §3.4).
// Exit codes: 0 OK, 1 problem found, 2 usage or IO error.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <iostream>

#include "tools/audit.h"

namespace {

// A one-line progress indicator on a terminal; silent otherwise.
sl::audit::Progress progress_bar() {
  if (!isatty(STDERR_FILENO)) return nullptr;
  return [](std::uint64_t seq, std::uint64_t head) {
    if (head) {
      std::cerr << "\r" << seq << " / " << head << " events (" << (100 * seq / head) << "%)" << std::flush;
    } else {
      std::cerr << "\r" << seq << " events" << std::flush;
    }
  };
}

int finish(const sl::audit::Report& report, bool json) {
  if (isatty(STDERR_FILENO)) std::cerr << "\r\033[K";
  if (json) {
    std::cout << report.json.dump() << "\n";
  } else {
    std::cout << report.text;
  }
  return report.exit_code;
}

// Beside a running server too: a secondary instance never blocks or races it.
std::unique_ptr<sl::audit::AuditStore> open_store(const std::string& dir) {
  auto store = sl::audit::AuditStore::open(dir);
  if (!store) {
    std::cerr << store.error().code << ": " << store.error().message << "\n";
    return nullptr;
  }
  return std::move(*store);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"shareledger-audit: verify and explain a shareledger database (exit 0 OK, 1 problem, 2 usage/IO)"};
  app.require_subcommand(1);
  std::string db;
  bool json = false;
  std::uint64_t to_seq = 0, seq = 0, after_seq = 0;
  std::string time, image, account, instance;

  auto add_db = [&](CLI::App* cmd) {
    cmd->add_option("--db", db, "Database directory")->required();
    cmd->add_flag("--json", json, "Machine-readable output (one JSON object)");
  };
  auto add_entity = [&](CLI::App* cmd) {
    auto* group = cmd->add_option_group("entity", "What to look at (exactly one)");
    group->add_option("--image", image, "Image id");
    group->add_option("--account", account, "Account id");
    group->add_option("--instance", instance, "Instance id");
    group->require_option(1);
  };

  auto* verify = app.add_subcommand("verify", "Check dense seqs, every hash and chain link, every event's schema");
  add_db(verify);
  auto* replay = app.add_subcommand("replay", "Rebuild projections from events and diff them with the stored ones");
  add_db(replay);
  replay->add_option("--to-seq", to_seq, "Print the rebuilt state as of this seq instead of diffing");
  auto* history = app.add_subcommand("history", "Timeline of the events touching an entity");
  add_db(history);
  add_entity(history);
  auto* as_of = app.add_subcommand("as-of", "Answer about an entity as of a seq or a time");
  add_db(as_of);
  auto* when = as_of->add_option_group("point", "The point in history (exactly one)");
  when->add_option("--seq", seq, "Sequence number");
  when->add_option("--time", time, "RFC 3339 time; the last event at or before it");
  when->require_option(1);
  add_entity(as_of);
  auto* export_cmd = app.add_subcommand("export", "Write the log as NDJSON envelopes to stdout");
  add_db(export_cmd);
  export_cmd->add_option("--after-seq", after_seq, "Only events after this seq");
  auto* import_cmd = app.add_subcommand("import", "Build a new database from NDJSON on stdin (verifies the chain)");
  add_db(import_cmd);

  CLI11_PARSE(app, argc, argv);

  if (import_cmd->parsed()) return finish(sl::audit::import_log(db, std::cin, progress_bar()), json);
  auto audit_store = open_store(db);
  if (!audit_store) return 2;
  const sl::Store* store = &audit_store->store();
  std::string entity = !image.empty() ? image : !account.empty() ? account : instance;
  std::string kind = !image.empty() ? "image" : !account.empty() ? "account" : "instance";

  if (verify->parsed()) return finish(sl::audit::verify(*store, progress_bar()), json);
  if (replay->parsed()) {
    if (replay->count("--to-seq")) return finish(sl::audit::replay_to(*store, to_seq, progress_bar()), json);
    return finish(sl::audit::replay_diff(*store, progress_bar()), json);
  }
  if (history->parsed()) return finish(sl::audit::history(*store, entity), json);
  if (as_of->parsed()) {
    if (!time.empty()) {
      auto resolved = sl::audit::seq_at(*store, time);
      if (!resolved) {
        std::cerr << resolved.error().message << "\n";
        return 2;
      }
      seq = *resolved;
    }
    return finish(sl::audit::as_of(*store, seq, kind, entity), json);
  }
  if (export_cmd->parsed()) {
    auto report = sl::audit::export_log(*store, after_seq, std::cout, progress_bar());
    if (report.exit_code != 0 || json) std::cerr << report.text;
    return report.exit_code;
  }
  return 2;
}
