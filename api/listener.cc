#include "api/listener.h"

#include <chrono>
#include <utility>

#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core/bind_handler.hpp>

#include "api/http_session.h"

namespace sl::api {

namespace beast = boost::beast;
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {
constexpr auto kAcceptBackoff = std::chrono::milliseconds(50);
}  // namespace

Listener::Listener(net::io_context& ioc, tcp::acceptor&& acceptor, std::shared_ptr<ServerCore> core)
    : ioc_(ioc),
      acceptor_(std::move(acceptor)),
      backoff_(acceptor_.get_executor()),
      core_(std::move(core)) {}

void Listener::run() {
  net::post(acceptor_.get_executor(),
            beast::bind_front_handler(&Listener::do_accept, shared_from_this()));
}

void Listener::stop() {
  net::post(acceptor_.get_executor(), [self = shared_from_this()] {
    beast::error_code ignored;
    self->acceptor_.close(ignored);
    self->backoff_.cancel();
  });
}

void Listener::do_accept() {
  if (!acceptor_.is_open()) return;
  acceptor_.async_accept(net::make_strand(ioc_),
                         beast::bind_front_handler(&Listener::on_accept, shared_from_this()));
}

void Listener::on_accept(beast::error_code ec, tcp::socket socket) {
  if (ec == net::error::operation_aborted || !acceptor_.is_open()) return;
  if (ec) return do_backoff();  // EMFILE, ENFILE, ENOBUFS...: retry shortly
  if (core_->draining) {
    beast::error_code ignored;
    socket.close(ignored);
    return;
  }
  std::make_shared<HttpSession>(std::move(socket), core_)->run();
  do_accept();
}

void Listener::do_backoff() {
  backoff_.expires_after(kAcceptBackoff);
  backoff_.async_wait(beast::bind_front_handler(&Listener::on_backoff, shared_from_this()));
}

void Listener::on_backoff(beast::error_code ec) {
  if (ec) return;  // cancelled by stop()
  do_accept();
}

}  // namespace sl::api
