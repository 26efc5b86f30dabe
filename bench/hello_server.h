// HelloServer: the "plain Beast hello-world" baseline for benchmarks. It
// answers every request with `200 text/plain "hello"`, keep-alive as the
// request asks, and does nothing else: no limits beyond Beast's defaults, no
// error bodies, no drain. Same threading model as sl::api::HttpServer (one
// io_context run by N threads, one strand per connection), so a benchmark's
// ratio to it measures what the real server adds on top of Beast.
//
// Thread safety: start(), stop() and the destructor from one controlling
// thread that is not an io thread. Header-only.
#pragma once

#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "events/result.h"

namespace sl::bench {

namespace hello_detail {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

class Session : public std::enable_shared_from_this<Session> {
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  http::request<http::string_body> req_;
  std::optional<http::response<http::string_body>> res_;

 public:
  explicit Session(tcp::socket&& socket) : stream_(std::move(socket)) {}

  void run() {
    net::dispatch(stream_.get_executor(),
                  beast::bind_front_handler(&Session::do_read, shared_from_this()));
  }

 private:
  void do_read() {
    req_ = {};
    stream_.expires_after(std::chrono::seconds(60));
    http::async_read(stream_, buffer_, req_,
                     beast::bind_front_handler(&Session::on_read, shared_from_this()));
  }

  void on_read(beast::error_code ec, std::size_t) {
    if (ec) return do_close();
    res_.emplace(http::status::ok, req_.version());
    res_->set(http::field::server, "hello");
    res_->set(http::field::content_type, "text/plain");
    res_->keep_alive(req_.keep_alive());
    res_->body() = "hello";
    res_->prepare_payload();
    do_write();
  }

  void do_write() {
    const bool keep_alive = res_->keep_alive();
    http::async_write(stream_, *res_,
                      beast::bind_front_handler(&Session::on_write, shared_from_this(), keep_alive));
  }

  void on_write(bool keep_alive, beast::error_code ec, std::size_t) {
    res_.reset();
    if (ec || !keep_alive) return do_close();
    do_read();
  }

  void do_close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
  }
};

class Listener : public std::enable_shared_from_this<Listener> {
  net::io_context& ioc_;
  tcp::acceptor acceptor_;

 public:
  Listener(net::io_context& ioc, tcp::acceptor&& acceptor)
      : ioc_(ioc), acceptor_(std::move(acceptor)) {}

  void run() { do_accept(); }

 private:
  void do_accept() {
    acceptor_.async_accept(net::make_strand(ioc_),
                           beast::bind_front_handler(&Listener::on_accept, shared_from_this()));
  }

  void on_accept(beast::error_code ec, tcp::socket socket) {
    if (ec == net::error::operation_aborted) return;
    if (!ec) std::make_shared<Session>(std::move(socket))->run();
    do_accept();
  }
};

}  // namespace hello_detail

class HelloServer {
 public:
  // threads: 0 = std::thread::hardware_concurrency(). port 0 = ephemeral.
  explicit HelloServer(int threads = 0, std::string address = "127.0.0.1", unsigned short port = 0)
      : threads_wanted_(threads > 0 ? threads
                                    : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()))),
        address_(std::move(address)),
        requested_port_(port),
        ioc_(threads_wanted_) {}
  ~HelloServer() { stop(); }

  HelloServer(const HelloServer&) = delete;
  HelloServer& operator=(const HelloServer&) = delete;

  // OK: listening, io threads running.
  // 400 InvalidParameter: bad address. 500 InternalError: bind/listen
  // failed, or already started.
  sl::Status start() {
    namespace net = boost::asio;
    using tcp = net::ip::tcp;
    if (started_) return sl::Error{500, "InternalError", "HelloServer: already started"};
    boost::beast::error_code ec;
    const auto address = net::ip::make_address(address_, ec);
    if (ec) return sl::Error{400, "InvalidParameter", "HelloServer: bad address " + address_};
    const tcp::endpoint endpoint(address, requested_port_);
    tcp::acceptor acceptor(net::make_strand(ioc_));
    if (acceptor.open(endpoint.protocol(), ec); !ec) acceptor.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) acceptor.bind(endpoint, ec);
    if (!ec) acceptor.listen(net::socket_base::max_listen_connections, ec);
    if (!ec) port_ = acceptor.local_endpoint(ec).port();
    if (ec) return sl::Error{500, "InternalError", "HelloServer: listen: " + ec.message()};
    started_ = true;
    std::make_shared<hello_detail::Listener>(ioc_, std::move(acceptor))->run();
    work_.emplace(net::make_work_guard(ioc_));
    for (int i = 0; i < threads_wanted_; ++i) threads_.emplace_back([this] { ioc_.run(); });
    return sl::Ok{};
  }

  unsigned short port() const { return port_; }

  // Stops the io_context (abandoning open connections) and joins the threads.
  // Idempotent.
  void stop() {
    if (!started_ || stopped_) return;
    stopped_ = true;
    work_.reset();
    ioc_.stop();
    for (std::thread& t : threads_) t.join();
    threads_.clear();
  }

 private:
  int threads_wanted_;
  std::string address_;
  unsigned short requested_port_;
  boost::asio::io_context ioc_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_;
  std::vector<std::thread> threads_;
  unsigned short port_ = 0;
  bool started_ = false;
  bool stopped_ = false;
};

}  // namespace sl::bench
