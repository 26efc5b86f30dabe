// HttpSession: one HTTP/1.1 connection, from accept to close or upgrade.
// ServerCore: the state the server, its listener, its sessions and their
// responders share (options, handlers, the live-session registry and the
// gate responders pass through).
//
// StreamChannel: the queue between a ResponseStream's producer and the
// session that sends it.
//
// Thread safety: an HttpSession runs on its own strand; only run(),
// post_response() and the post_* hooks may be called from other threads.
// ServerCore's methods are thread-safe.
//
// Ownership: the registry holds a strong reference to every live session, so
// a session waiting for its handler's answer stays alive; a session drops
// out of the registry when its connection closes or is upgraded. Responders
// hold only weak references and pass through the gate, which stop() closes
// once the io threads are joined, so a Responder that outlives the server
// never touches a dead io_context.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>

#include "api/http_server.h"

namespace sl::api {

class HttpSession;

struct ServerCore {
  ServerCore(HttpServerOptions o, RequestHandler h, UpgradeHandler u)
      : options(std::move(o)), on_request(std::move(h)), on_upgrade(std::move(u)) {}

  const HttpServerOptions options;
  const RequestHandler on_request;
  const UpgradeHandler on_upgrade;  // may be null

  // Set once by stop(); sessions close at their next request boundary.
  std::atomic<bool> draining{false};

  // Responders deliver under a shared lock while gate_open; stop() closes it
  // (exclusive lock) after joining the io threads.
  std::shared_mutex gate_mu;
  bool gate_open = true;  // GUARDED_BY(gate_mu)

  void add(std::shared_ptr<HttpSession> s);
  void remove(HttpSession* s);  // no-op if absent
  std::vector<std::shared_ptr<HttpSession>> snapshot();
  // true: the registry emptied within `timeout`.
  bool wait_empty(std::chrono::milliseconds timeout);
  // Closes the gate and releases every registered session.
  // REQUIRES: the io threads are joined.
  void shut();

 private:
  std::mutex mu_;
  std::condition_variable empty_cv_;
  std::unordered_map<HttpSession*, std::shared_ptr<HttpSession>> sessions_;  // GUARDED_BY(mu_)
};

// Between a ResponseStream (its producer's thread) and its session's strand:
// the bytes written and not yet sent, and whether the session will look at
// them without being told. Thread-safe.
struct StreamChannel {
  StreamChannel(std::shared_ptr<ServerCore> c, std::weak_ptr<HttpSession> s)
      : core(std::move(c)), session(std::move(s)) {}

  // Nothing more will be sent: the next write() returns false, a waiting one
  // wakes up.
  void close();
  // Has the session look at the queue, unless it already will.
  // REQUIRES: mu not held by the caller.
  void wake();

  const std::shared_ptr<ServerCore> core;
  const std::weak_ptr<HttpSession> session;
  std::mutex mu;
  std::condition_variable room;  // the producer waits here for unsent < the bound
  std::string queued;            // GUARDED_BY(mu): written, not yet taken by the session
  std::size_t unsent = 0;        // GUARDED_BY(mu): queued plus the bytes being written
  bool finished = false;         // GUARDED_BY(mu): `queued` ends the body
  bool dropped = false;          // GUARDED_BY(mu): the producer left without finish()
  bool closed = false;           // GUARDED_BY(mu)
  // GUARDED_BY(mu). true while a wake-up is posted or a write is in flight:
  // the session will look at `queued` again without a new post. The start
  // of the stream counts as one.
  bool session_will_look = true;
};

// A request parser whose oversized header fields become error::header_limit
// instead of the std::length_error Beast's fields container throws (it
// stores field offsets in 16 bits).
class RequestParser final : public http::request_parser<http::string_body> {
 private:
  void on_field_impl(http::field name, boost::beast::string_view name_string,
                     boost::beast::string_view value,
                     boost::beast::error_code& ec) override;
};

class HttpSession : public std::enable_shared_from_this<HttpSession> {
  enum class State { kIdle, kReadingHeader, kReadingBody, kHandling, kWriting, kStreaming, kClosing, kClosed };
  struct OutStream;

  std::shared_ptr<ServerCore> core_;
  const boost::asio::any_io_executor ex_;  // the strand; readable from any thread
  boost::beast::tcp_stream stream_;
  boost::beast::flat_buffer buffer_;
  std::optional<RequestParser> parser_;
  std::optional<Response> res_;
  std::unique_ptr<OutStream> out_;  // the streamed answer being sent (kStreaming)
  bool watching_ = false;           // a read is waiting for the client to go away
  http::response<http::empty_body> continue_{http::status::continue_, 11};
  PeerInfo peer_;
  State state_ = State::kIdle;
  std::uint64_t gen_ = 0;  // counts requests handed to the handler
  unsigned req_version_ = 11;
  bool req_keep_alive_ = false;
  bool req_head_ = false;
  std::size_t lingered_ = 0;

 public:
  HttpSession(boost::asio::ip::tcp::socket&& socket, std::shared_ptr<ServerCore> core);
  // Closes a streamed answer's channel, so its producer never waits on a
  // session that is gone.
  ~HttpSession();

  // Registers the session and starts reading. Thread-safe.
  void run();

  // Thread-safe. Delivers the answer to request `gen`; ignored unless the
  // session is still waiting for exactly that answer.
  void post_response(std::uint64_t gen, Response res);
  // Thread-safe. Starts a streamed answer to request `gen`, under the same
  // condition; otherwise closes `channel`.
  void post_stream_start(std::uint64_t gen, Response head, std::shared_ptr<StreamChannel> channel);
  // Thread-safe. The streamed answer's producer queued bytes, finished or left.
  void post_stream_ready();

  // Thread-safe. Close now if no request is in progress (stop()).
  void post_drain();
  // Thread-safe. Close now whatever the state (stop() after drain_timeout).
  void post_close();

 private:
  void do_wait_request();
  void on_first_bytes(boost::beast::error_code ec, std::size_t n);
  void do_read_header();
  void on_read_header(boost::beast::error_code ec, std::size_t n);
  void do_write_continue();
  void on_write_continue(boost::beast::error_code ec, std::size_t n);
  void do_read_body();
  void on_read_body(boost::beast::error_code ec, std::size_t n);
  void do_handle();
  void on_response(std::uint64_t gen, Response res);
  void do_write();
  void on_write(bool keep_alive, boost::beast::error_code ec, std::size_t n);
  template <class Body>
  void stamp(http::response<Body>& res) const;

  // A streamed answer: the header, then whatever the producer queued, one
  // write at a time, then the last chunk. do_watch() reads meanwhile to
  // notice a client that leaves.
  void on_stream_start(std::uint64_t gen, Response head, std::shared_ptr<StreamChannel> channel);
  void do_watch();
  void on_watch(boost::beast::error_code ec, std::size_t n);
  void on_stream_ready();
  void do_write_stream();
  void on_write_stream(boost::beast::error_code ec, std::size_t n);
  void on_stream_end();

  // Protocol failure: answer with an ECS error (if the failure is one we can
  // answer), then linger and close.
  void do_write_error(boost::beast::error_code parse_ec);
  void on_write_error(boost::beast::error_code ec, std::size_t n);
  void do_linger();
  void on_linger(boost::beast::error_code ec, std::size_t n);

  void do_close();
  void fail(boost::beast::error_code ec);
};

}  // namespace sl::api
