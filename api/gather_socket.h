// A TCP socket for Beast's websocket stream that sends many small writes with
// one syscall.
//
// Beast writes one websocket message per operation, so a subscriber that is N
// frames behind cost N `sendmsg` calls. Below the websocket stream, every
// write is copied into a buffer and completes at once; the buffer goes to the
// kernel in one write when the socket is free, or, while the owner holds it
// (hold(true), a batch of frames on its way), when kFlushBytes have gathered or
// the hold ends. Every byte written through the stream, Beast's own pongs and
// close frames included, keeps its order: that is why this sits below Beast
// rather than beside it.
//
// Back-pressure is kept: a write that leaves more than kMaxBufferedBytes
// waiting completes only once the kernel has taken some, so a subscriber that
// stops reading still stops its session.
//
// Thread safety: like a socket, one strand (the websocket stream's).
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <utility>

#include <boost/asio/async_result.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/role.hpp>
#include <boost/beast/websocket/teardown.hpp>

namespace sl::api {

// A move-only void(Args...) callable, for one stored completion handler
// (std::function needs a copyable target; Boost 1.81's
// asio::any_completion_handler overflowed the stack here: it wrapped itself
// again and again when passed on).
template <class... Args>
class PendingHandler {
 public:
  PendingHandler() = default;
  template <class F>
  explicit PendingHandler(F f) : impl_(std::make_unique<Impl<F>>(std::move(f))) {}
  explicit operator bool() const { return impl_ != nullptr; }
  void operator()(Args... args) && {
    auto impl = std::move(impl_);
    impl->call(args...);
  }

 private:
  struct Base {
    virtual ~Base() = default;
    virtual void call(Args... args) = 0;
  };
  template <class F>
  struct Impl final : Base {
    explicit Impl(F&& f) : f(std::move(f)) {}
    void call(Args... args) override { std::move(f)(args...); }
    F f;
  };
  std::unique_ptr<Base> impl_;
};

class GatherSocket {
 public:
  static constexpr std::size_t kFlushBytes = 32 << 10;
  static constexpr std::size_t kMaxBufferedBytes = 64 << 10;

  using socket_type = boost::asio::ip::tcp::socket;
  using executor_type = socket_type::executor_type;

  explicit GatherSocket(socket_type&& socket) : core_(std::make_shared<Core>(std::move(socket))) {}
  GatherSocket(GatherSocket&&) = default;
  // Like a socket's: a write still in flight keeps only the buffers alive, not
  // the connection.
  ~GatherSocket() {
    if (!core_) return;
    boost::beast::error_code ignored;
    core_->socket.close(ignored);
  }

  executor_type get_executor() noexcept { return core_->socket.get_executor(); }
  // Beast reaches the TCP socket through this (timeouts close it).
  socket_type& next_layer() noexcept { return core_->socket; }

  // While held, writes only gather (up to kFlushBytes); releasing sends them.
  void hold(bool on) {
    core_->held = on;
    if (!on) core_->start();
  }

  template <class MutableBuffers, class Token>
  auto async_read_some(const MutableBuffers& buffers, Token&& token) {
    return core_->socket.async_read_some(buffers, std::forward<Token>(token));
  }

  template <class ConstBuffers, class Token>
  auto async_write_some(const ConstBuffers& buffers, Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::beast::error_code, std::size_t)>(
        [core = core_](auto handler, const ConstBuffers& buffers) { core->write(buffers, std::move(handler)); },
        token, buffers);
  }

  // Beast's websocket close ends with these: send what is gathered first.
  friend void teardown(boost::beast::role_type role, GatherSocket& s, boost::beast::error_code& ec) {
    boost::beast::websocket::teardown(role, s.core_->socket, ec);
  }
  template <class Handler>
  friend void async_teardown(boost::beast::role_type role, GatherSocket& s, Handler&& handler) {
    auto core = s.core_;
    core->held = false;
    core->start();
    core->when_sent([core, role, handler = std::forward<Handler>(handler)](boost::beast::error_code) mutable {
      boost::beast::websocket::async_teardown(role, core->socket, std::move(handler));
    });
  }

 private:
  struct Core : std::enable_shared_from_this<Core> {
    explicit Core(socket_type&& s) : socket(std::move(s)) {}

    template <class ConstBuffers, class Handler>
    void write(const ConstBuffers& buffers, Handler handler) {
      if (failed) return complete(std::move(handler), failed, std::size_t{0});
      const std::size_t n = boost::asio::buffer_size(buffers);
      const std::size_t before = pending.size();
      pending.resize(before + n);
      boost::asio::buffer_copy(boost::asio::buffer(pending.data() + before, n), buffers);
      if (!held || pending.size() >= kFlushBytes) start();
      if (pending.size() > kMaxBufferedBytes) {
        blocked = PendingHandler<boost::beast::error_code, std::size_t>(std::move(handler));  // one write at a time: at most one waits
        blocked_bytes = n;
        return;
      }
      complete(std::move(handler), boost::beast::error_code{}, n);
    }

    void start() {
      if (in_flight || pending.empty() || failed) return;
      in_flight = true;
      sending.swap(pending);
      boost::asio::async_write(socket, boost::asio::buffer(sending),
                               [self = shared_from_this()](boost::beast::error_code ec, std::size_t) { self->sent(ec); });
    }

    void sent(boost::beast::error_code ec) {
      in_flight = false;
      sending.clear();
      if (ec) failed = ec;
      if (!held || pending.size() >= kFlushBytes) start();
      if (blocked && (failed || pending.size() <= kMaxBufferedBytes)) {
        complete(std::move(blocked), failed, failed ? std::size_t{0} : blocked_bytes);
      }
      if (!in_flight && pending.empty()) {
        // An idle subscriber keeps no buffers (a thousand of them add up).
        std::string().swap(sending);
        std::string().swap(pending);
      }
      if (on_sent && (failed || (!in_flight && pending.empty()))) complete(std::move(on_sent), failed);
    }

    template <class Handler>
    void when_sent(Handler handler) {
      if (failed || (!in_flight && pending.empty())) return complete(std::move(handler), failed);
      on_sent = PendingHandler<boost::beast::error_code>(std::move(handler));
    }

    // Never from inside the initiating call: completions are posted, on the
    // socket's executor, which is the websocket stream's (its operations'
    // handlers are bound to it).
    template <class Handler, class... Args>
    void complete(Handler handler, Args... args) {
      boost::asio::post(socket.get_executor(),
                        [handler = std::move(handler), args...]() mutable { std::move(handler)(args...); });
    }

    socket_type socket;
    std::string pending;  // gathered, not yet handed to the kernel
    std::string sending;  // the bytes of the write in flight
    bool held = false, in_flight = false;
    boost::beast::error_code failed;  // sticky: every later write fails with it
    PendingHandler<boost::beast::error_code, std::size_t> blocked;  // a write waiting for room
    std::size_t blocked_bytes = 0;
    PendingHandler<boost::beast::error_code> on_sent;  // a teardown waiting for the gathered bytes to go
  };

  std::shared_ptr<Core> core_;
};

}  // namespace sl::api
