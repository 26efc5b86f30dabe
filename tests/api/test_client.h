// A small blocking HTTP client for the tests of the server and its routes
// over a real socket on 127.0.0.1.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "api/http_server.h"

namespace sl::api::testing {

namespace beast = boost::beast;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using namespace std::chrono_literals;

constexpr auto kClientTimeout = 3s;

// The completion handler of RunUntilDone: records the operation's error code
// (connect, read, write, handshake all end with one).
struct RecordError {
  std::shared_ptr<beast::error_code> out;
  void operator()(beast::error_code ec) const { *out = ec; }
  void operator()(beast::error_code ec, std::size_t) const { *out = ec; }
  template <class Endpoint>
  void operator()(beast::error_code ec, const Endpoint&) const { *out = ec; }
};

// Starts one asynchronous operation, `start(handler)`, and runs `ioc` until it
// completes or `timeout` passes: its error code, or would_block when it did not
// finish in time (the operation stays pending on `ioc`).
template <class Start>
beast::error_code RunUntilDone(net::io_context& ioc, Start start, std::chrono::steady_clock::duration timeout) {
  auto out = std::make_shared<beast::error_code>(net::error::would_block);
  start(RecordError{out});
  ioc.restart();
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (*out == net::error::would_block && ioc.run_one_until(deadline)) {
  }
  return *out;
}

// A small blocking client: each call runs one async operation on a private
// io_context for at most kClientTimeout, so a broken server fails the test
// instead of hanging it.
class TestClient {
 public:
  // receive_buffer > 0: the socket's SO_RCVBUF, set before connecting.
  explicit TestClient(unsigned short port, int receive_buffer = 0) : stream_(ioc_) {
    if (receive_buffer > 0) {
      stream_.socket().open(tcp::v4());
      stream_.socket().set_option(net::socket_base::receive_buffer_size(receive_buffer));
    }
    connect_ec_ = Await([&](auto h) {
      stream_.async_connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port), h);
    });
  }

  beast::error_code connect_error() const { return connect_ec_; }

  beast::error_code SendRaw(std::string_view bytes) {
    return Await([&](auto h) { net::async_write(stream_, net::buffer(bytes), h); });
  }

  beast::error_code Send(Request req) {
    req.prepare_payload();
    return Await([&](auto h) { http::async_write(stream_, req, h); });
  }

  beast::error_code Read(Response& res, bool head = false) {
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 << 20);
    parser.skip(head);
    beast::error_code ec = Await([&](auto h) { http::async_read(stream_, buffer_, parser, h); });
    if (!ec) res = parser.release();
    return ec;
  }

  // Reads one answer incrementally: ReadHeader() once, then ReadSome() until
  // parser.is_done(); parser.get().body() holds what arrived so far.
  beast::error_code ReadHeader(http::response_parser<http::string_body>& parser) {
    return Await([&](auto h) { http::async_read_header(stream_, buffer_, parser, h); });
  }
  beast::error_code ReadSome(http::response_parser<http::string_body>& parser) {
    return Await([&](auto h) { http::async_read_some(stream_, buffer_, parser, h); });
  }

  // Half-closes: the server reads EOF, the client can still read.
  void ShutdownSend() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
  }

  // Reads (and discards) until the server closes. Returns the time it took,
  // or nullopt if the connection is still open after `timeout`.
  std::optional<std::chrono::steady_clock::duration> WaitClosed(std::chrono::milliseconds timeout = 2000ms) {
    using Clock = std::chrono::steady_clock;
    const auto start = Clock::now();
    char scratch[4096];
    while (Clock::now() - start < timeout) {
      beast::error_code ec = Await(
          [&](auto h) { stream_.async_read_some(net::buffer(scratch), h); },
          std::chrono::duration_cast<std::chrono::milliseconds>(timeout - (Clock::now() - start)));
      if (ec == net::error::would_block) break;  // still open
      if (ec) return Clock::now() - start;
    }
    return std::nullopt;
  }

  void Close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
  }

 private:
  template <class Start>
  beast::error_code Await(Start start, std::chrono::milliseconds timeout = kClientTimeout) {
    return RunUntilDone(ioc_, start, timeout);
  }

  net::io_context ioc_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  beast::error_code connect_ec_;
};

inline Request MakeRequest(http::verb method, std::string target, std::string body = {}) {
  Request req{method, target, 11};
  req.set(http::field::host, "127.0.0.1");
  req.body() = std::move(body);
  return req;
}

}  // namespace sl::api::testing
