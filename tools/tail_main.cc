// shareledger-tail: follow the change feed, printing one event envelope per line,
// and resume from the last seq received after any disconnect.
#include <CLI/CLI.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <iostream>
#include <nlohmann/json.hpp>
#include <thread>

namespace net = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using Json = nlohmann::json;

struct Options {
  std::string host = "127.0.0.1", port = "8080", token;
  std::vector<std::string> images, accounts, types;
  long long after_seq = -1;  // -1: live from head
  long long max_events = 0;  // 0: forever
  bool quiet_status = false;
};

enum class Outcome { kDone, kReconnect, kRefused };

// Whether the server may answer a new subscription differently later. Auth and
// subscription errors would repeat forever: they end the program.
bool retryable(const std::string& code) { return code == "ServiceUnavailable" || code == "InternalError"; }

// One connection: subscribe after `last`, print events until the stream ends.
Outcome follow(const Options& o, long long& last, long long& printed) {
  net::io_context io;
  net::ip::tcp::resolver resolver(io);
  websocket::stream<beast::tcp_stream> ws(io);
  beast::get_lowest_layer(ws).connect(resolver.resolve(o.host, o.port));
  ws.set_option(websocket::stream_base::decorator([&](websocket::request_type& req) {
    if (!o.token.empty()) req.set(beast::http::field::authorization, "Bearer " + o.token);
  }));
  ws.handshake(o.host + ":" + o.port, "/v1/feed");
  Json sub{{"op", "subscribe"}, {"filter", {{"image_ids", o.images}, {"account_ids", o.accounts}, {"types", o.types}}}};
  if (last >= 0) sub["after_seq"] = last;
  ws.write(net::buffer(sub.dump()));
  beast::flat_buffer buffer;
  for (;;) {
    ws.read(buffer);
    Json msg = Json::parse(beast::buffers_to_string(buffer.data()), nullptr, false);
    buffer.consume(buffer.size());
    std::string kind = msg.value("kind", "");
    if (kind == "event") {
      last = msg["event"]["seq"].get<long long>();
      std::cout << msg["event"].dump() << "\n" << std::flush;
      if (o.max_events && ++printed >= o.max_events) return Outcome::kDone;
    } else if (kind == "heartbeat") {
      last = std::max(last, msg["position"].get<long long>());  // safe resume point
    } else if (kind == "error") {
      const std::string code = msg.value("code", "");
      std::cerr << "level=error code=" << code << " message=" << msg["message"] << "\n";
      return retryable(code) ? Outcome::kReconnect : Outcome::kRefused;
    } else if (!o.quiet_status) {
      std::cerr << "level=info " << msg.dump() << "\n";
    }
  }
}

int main(int argc, char** argv) {
  CLI::App app{"shareledger-tail: print the change feed, resuming after disconnects "
               "(exit 0 after --max-events, 1 when the server refuses the subscription)"};
  Options o;
  app.add_option("--host", o.host, "Server host")->capture_default_str();
  app.add_option("--port", o.port, "Server port")->capture_default_str();
  app.add_option("--token", o.token, "Admin bearer token");
  app.add_option("--after-seq", o.after_seq, "Start after this seq (0 = genesis; default: live from head)");
  app.add_option("--image", o.images, "Only events about these image ids");
  app.add_option("--account", o.accounts, "Only events about these account ids");
  app.add_option("--type", o.types, "Only these event types");
  app.add_option("--max-events", o.max_events, "Exit after printing this many events (0 = never)");
  app.add_flag("--quiet", o.quiet_status, "Do not print live/heartbeat status lines");
  CLI11_PARSE(app, argc, argv);
  long long last = o.after_seq, printed = 0;
  for (;;) {
    try {
      switch (follow(o, last, printed)) {
        case Outcome::kDone:
          return 0;
        case Outcome::kRefused:
          return 1;
        case Outcome::kReconnect:
          break;
      }
    } catch (const std::exception& e) {
      std::cerr << "level=warn msg=\"disconnected\" error=\"" << e.what() << "\" resume_after=" << last << "\n";
    }
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
}
