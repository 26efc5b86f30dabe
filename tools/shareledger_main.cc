// shareledger serve: the ledger behind the ECS-compatible and native HTTP APIs.
#include <CLI/CLI.hpp>
#include <boost/asio/steady_timer.hpp>
#include <csignal>
#include <iostream>
#include <thread>

#include "api/feed.h"
#include "api/http_server.h"
#include "api/ids.h"
#include "api/service.h"
#include "events/time_format.h"

namespace {

// One structured log line: ts=... level=... msg=... key=value...
void log_line(const std::string& level, const std::string& msg, const std::string& fields = "") {
  std::cerr << "ts=" << sl::rfc3339_micros(sl::now_micros()) << " level=" << level << " msg=\"" << msg << "\""
            << (fields.empty() ? "" : " " + fields) << std::endl;
}

struct DemoAccount {
  std::string label, site;
};

// Registers the demo accounts on an empty ledger (two cn, one intl, one
// directory manager) and prints every account's credentials.
int print_or_create_demo(sl::Ledger& ledger) {
  auto rows = std::move(*ledger.view());
  bool empty = true;
  rows->scan("acct/", [&](std::string_view, std::string_view) {
    empty = false;
    return false;
  });
  if (empty) {
    const DemoAccount demo[] = {{"alice", "cn"}, {"bob", "cn"}, {"carol", "intl"}, {"dora-manager", "cn"}};
    for (const auto& d : demo) {
      std::string account = sl::api::new_account_id(), key = sl::api::new_access_key_id();
      auto r = ledger.execute(sl::RegisterAccount{account, d.site, key},
                              sl::CommandContext{{}, "demo", sl::api::new_access_key_secret()});
      if (!r) {
        log_line("error", "demo account failed", "code=" + r.error().code);
        return 1;
      }
      if (d.label == "dora-manager") {
        ledger.execute(sl::EnableResourceDirectory{account, sl::api::new_directory_id(), sl::api::new_root_folder_id()},
                       sl::CommandContext{{account, key}, "demo", ""});
      }
    }
    rows = std::move(*ledger.view());
  }
  std::cout << "demo accounts (account_id site access_key_id access_key_secret):\n";
  rows->scan("akey/", [&](std::string_view key, std::string_view account) {
    std::string access_key(key.substr(5));
    auto credentials = ledger.credentials(access_key);
    auto row = sl::row_json(*rows, "acct/" + std::string(account));
    if (credentials && row) {
      std::cout << "  " << account << " " << (*row)["site"].get<std::string>() << " " << access_key << " "
                << credentials->second << "\n";
    }
    return true;
  });
  std::cout.flush();
  return 0;
}

int serve(const std::string& data, const std::string& listen, bool demo, std::string admin_token,
          const sl::api::FeedOptions& feed_options, sl::LedgerOptions options, int image_build_ms, int threads) {
  // Block the stop signals before any thread starts, then wait for them here.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  options.progress = [](std::uint64_t seq) { log_line("info", "replaying log", "seq=" + std::to_string(seq)); };
  auto ledger = sl::Ledger::open(data, options);
  if (!ledger) {
    log_line("error", "cannot open ledger", "code=" + ledger.error().code + " detail=\"" + ledger.error().message + "\"");
    return 2;
  }
  if (admin_token.empty()) admin_token = sl::api::new_access_key_secret();
  std::cout << "admin token: " << admin_token << "\n";
  if (demo && print_or_create_demo(**ledger) != 0) return 2;

  sl::api::ServiceOptions service_options{admin_token, std::chrono::milliseconds(image_build_ms)};
  sl::api::Service service(**ledger, service_options);
  sl::api::HttpServerOptions http_options;
  http_options.listen = listen;
  http_options.threads = threads;
  // Its own io_context and threads, at the lowest priority (api/feed.h).
  auto feed = std::make_unique<sl::api::FeedHub>(service, feed_options);
  sl::api::HttpServer server(
      http_options,
      [&service](sl::api::Request&& req, const sl::api::PeerInfo& peer, sl::api::Responder respond) {
        service.handle(std::move(req), peer, std::move(respond));
      },
      [&feed](boost::beast::tcp_stream&& stream, sl::api::Request&& req) { feed->accept(std::move(stream), std::move(req)); });
  feed->attach(**ledger);
  service.set_scheduler([&server](std::chrono::milliseconds delay, std::function<void()> fn) {
    auto timer = std::make_shared<boost::asio::steady_timer>(server.io(), delay);
    timer->async_wait([timer, fn = std::move(fn)](const boost::system::error_code& ec) {
      if (!ec) fn();
    });
  });
  if (auto s = server.start(); !s) {
    log_line("error", "cannot listen", "listen=" + listen + " detail=\"" + s.error().message + "\"");
    return 2;
  }
  auto head = (*ledger)->head();
  log_line("info", "serving", "listen=" + listen + " port=" + std::to_string(server.port()) + " data=" + data +
                                  " head_seq=" + std::to_string(head.seq));
  std::cout << "listening on http://127.0.0.1:" << server.port() << std::endl;

  int signal = 0;
  sigwait(&stop_signals, &signal);
  log_line("info", "stopping", "signal=" + std::to_string(signal));
  server.stop();
  (*ledger)->stop();
  feed->detach();
  feed->stop();
  log_line("info", "stopped", "head_seq=" + std::to_string((*ledger)->head().seq));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"shareledger: an event-sourced ledger for sharing custom images, ECS-compatible"};
  app.require_subcommand(1);
  auto* serve_cmd = app.add_subcommand("serve", "Run the HTTP server");
  std::string data = "./data", listen = "127.0.0.1:8080", admin_token;
  bool demo = false;
  int heartbeat_ms = 5000, image_quota = 100, image_build_ms = 0, threads = 0, feed_threads = 1;
  std::size_t block_cache_mb = sl::StoreOptions{}.block_cache_bytes >> 20;
  std::string feed_priority = "idle";
  serve_cmd->add_option("--data", data, "RocksDB directory")->capture_default_str();
  serve_cmd->add_option("--listen", listen, "host:port to listen on (port 0 = ephemeral)")->capture_default_str();
  serve_cmd->add_flag("--demo", demo, "Register demo accounts on an empty database and print all credentials");
  serve_cmd->add_option("--admin-token", admin_token, "Bearer token for the native admin routes (random if empty)");
  serve_cmd->add_option("--heartbeat-ms", heartbeat_ms, "Feed heartbeat interval")->capture_default_str();
  serve_cmd->add_option("--image-quota", image_quota, "Custom images per account per region")->capture_default_str();
  serve_cmd->add_option("--image-build-ms", image_build_ms, "Time new images stay Creating")->capture_default_str();
  serve_cmd->add_option("--threads", threads, "HTTP threads (0 = one per core)")->capture_default_str();
  serve_cmd
      ->add_option("--block-cache-mb", block_cache_mb,
                   "RocksDB block cache in MiB (as-of reads over a long history miss it once per row)")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{8}, std::size_t{1} << 20));
  serve_cmd->add_option("--feed-threads", feed_threads, "Feed (WebSocket) threads")->capture_default_str()->check(CLI::Range(1, 64));
  serve_cmd
      ->add_option("--feed-priority", feed_priority,
                   "Feed threads' priority, below the writers': a nice value 0..19, or idle (SCHED_IDLE)")
      ->capture_default_str();
  sl::api::FeedOptions feed_options;
  serve_cmd
      ->add_option("--feed-catch-up-share", feed_options.catch_up_share,
                   "While writers commit, the share of the time subscribers behind the live window may catch up (1 = always)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  CLI11_PARSE(app, argc, argv);
  feed_options.heartbeat = std::chrono::milliseconds(heartbeat_ms);
  feed_options.threads = feed_threads;
  if (auto s = sl::api::parse_feed_priority(feed_priority, feed_options); !s) {
    std::cerr << "--feed-priority: " << s.error().message << "\n";
    return 2;
  }
  sl::LedgerOptions ledger_options;
  ledger_options.limits.image_quota = image_quota;
  ledger_options.store.block_cache_bytes = block_cache_mb << 20;
  return serve(data, listen, demo, admin_token, feed_options, std::move(ledger_options), image_build_ms, threads);
}
