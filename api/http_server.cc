#include "api/http_server.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <exception>
#include <string_view>
#include <utility>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>

#include "api/http_session.h"
#include "api/listener.h"

namespace sl::api {

namespace beast = boost::beast;
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

// After drain_timeout, how long stop() waits for the forced closes to run.
constexpr auto kForcedCloseWait = std::chrono::milliseconds(1000);

int resolve_thread_count(int requested) {
  if (requested > 0) return requested;
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

sl::Error bad_listen(const std::string& listen, std::string_view why) {
  return sl::Error{400, "InvalidParameter",
                   "listen address \"" + listen + "\": " + std::string(why)};
}

// "host:port", "[v6]:port", ":port" (all interfaces). The host is an IP
// literal or a name resolved once, now.
sl::Result<tcp::endpoint> parse_listen(const std::string& listen, net::io_context& ioc) {
  std::string_view s = listen;
  std::string_view host;
  std::string_view port;
  if (!s.empty() && s.front() == '[') {
    const auto close = s.find(']');
    if (close == std::string_view::npos || close + 1 >= s.size() || s[close + 1] != ':') {
      return bad_listen(listen, "expected [v6-address]:port");
    }
    host = s.substr(1, close - 1);
    port = s.substr(close + 2);
  } else {
    const auto colon = s.rfind(':');
    if (colon == std::string_view::npos) return bad_listen(listen, "expected host:port");
    host = s.substr(0, colon);
    port = s.substr(colon + 1);
  }
  unsigned port_number = 0;
  const auto [end, err] = std::from_chars(port.data(), port.data() + port.size(), port_number);
  if (port.empty() || err != std::errc() || end != port.data() + port.size() || port_number > 65535) {
    return bad_listen(listen, "port must be a number 0-65535");
  }
  if (host.empty()) host = "0.0.0.0";

  beast::error_code ec;
  const net::ip::address address = net::ip::make_address(host, ec);
  if (!ec) return tcp::endpoint(address, static_cast<unsigned short>(port_number));
  tcp::resolver resolver(ioc);
  const auto results = resolver.resolve(host, port, ec);
  if (ec || results.empty()) {
    return bad_listen(listen, "cannot resolve host: " + (ec ? ec.message() : "no address"));
  }
  return results.begin()->endpoint();
}

}  // namespace

HttpServer::HttpServer(HttpServerOptions options, RequestHandler handler, UpgradeHandler upgrade)
    : core_(std::make_shared<ServerCore>(std::move(options), std::move(handler), std::move(upgrade))),
      ioc_(resolve_thread_count(core_->options.threads)),
      thread_count_(resolve_thread_count(core_->options.threads)) {}

HttpServer::~HttpServer() { stop(); }

sl::Status HttpServer::start() {
  if (started_) return sl::Error{500, "InternalError", "HttpServer::start: already started"};
  const std::string& listen = core_->options.listen;
  sl::Result<tcp::endpoint> endpoint = parse_listen(listen, ioc_);
  if (!endpoint.ok()) return endpoint.error();

  tcp::acceptor acceptor(net::make_strand(ioc_));
  beast::error_code ec;
  const auto failed = [&](std::string_view step) {
    return sl::Error{500, "InternalError",
                     "listen on " + listen + ": " + std::string(step) + ": " + ec.message()};
  };
  if (acceptor.open(endpoint->protocol(), ec); ec) return failed("open");
  if (acceptor.set_option(net::socket_base::reuse_address(true), ec); ec) return failed("set_option");
  if (acceptor.bind(*endpoint, ec); ec) return failed("bind");
  if (acceptor.listen(net::socket_base::max_listen_connections, ec); ec) return failed("listen");
  const tcp::endpoint bound = acceptor.local_endpoint(ec);
  if (ec) return failed("local_endpoint");

  port_ = bound.port();
  started_ = true;
  listener_ = std::make_shared<Listener>(ioc_, std::move(acceptor), core_);
  listener_->run();
  work_ = std::make_unique<net::executor_work_guard<net::io_context::executor_type>>(
      net::make_work_guard(ioc_));
  threads_.reserve(thread_count_);
  for (int i = 0; i < thread_count_; ++i) {
    threads_.emplace_back([this] {
      // A handler that throws unwinds out of run(); keep serving.
      for (;;) {
        try {
          ioc_.run();
          return;
        } catch (const std::exception& e) {
          std::fprintf(stderr, "shareledger http: io handler threw: %s\n", e.what());
        } catch (...) {
          std::fprintf(stderr, "shareledger http: io handler threw\n");
        }
      }
    });
  }
  return sl::Ok{};
}

void HttpServer::stop() {
  if (!started_ || stopped_) return;
  stopped_ = true;

  core_->draining = true;
  listener_->stop();
  for (const auto& s : core_->snapshot()) s->post_drain();
  if (!core_->wait_empty(core_->options.drain_timeout)) {
    for (const auto& s : core_->snapshot()) s->post_close();
    core_->wait_empty(kForcedCloseWait);
  }

  work_.reset();
  ioc_.stop();
  for (std::thread& t : threads_) t.join();
  threads_.clear();
  core_->shut();
}

}  // namespace sl::api
