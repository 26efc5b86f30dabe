// Listener: accepts connections on a bound acceptor and starts an
// HttpSession for each, each on its own strand.
//
// Thread safety: runs on its own strand; stop() may be called from any
// thread. Kept alive by its pending operations (shared_from_this).
#pragma once

#include <memory>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/error.hpp>

namespace sl::api {

struct ServerCore;

class Listener : public std::enable_shared_from_this<Listener> {
  boost::asio::io_context& ioc_;
  boost::asio::ip::tcp::acceptor acceptor_;  // its executor is the listener's strand
  boost::asio::steady_timer backoff_;        // after an accept error (e.g. EMFILE)
  std::shared_ptr<ServerCore> core_;

 public:
  // REQUIRES: `acceptor` is open, bound and listening, and its executor is a
  // strand of `ioc`.
  Listener(boost::asio::io_context& ioc, boost::asio::ip::tcp::acceptor&& acceptor,
           std::shared_ptr<ServerCore> core);

  // Starts accepting.
  void run();

  // Thread-safe. Closes the acceptor; the pending accept completes with
  // operation_aborted and no new connection is accepted.
  void stop();

 private:
  void do_accept();
  void on_accept(boost::beast::error_code ec, boost::asio::ip::tcp::socket socket);
  void do_backoff();
  void on_backoff(boost::beast::error_code ec);
};

}  // namespace sl::api
