// HttpServer: a generic async HTTP/1.1 server on Boost.Beast. It knows
// nothing about ECS, accounts or events: it parses requests, hands each one
// to a RequestHandler and writes back whatever Response the handler passes to
// its Responder. WebSocket upgrade requests go to an UpgradeHandler instead.
//
// Threading: one io_context run by `threads` threads; every connection runs
// on its own strand, so a session's handlers never run concurrently. The
// RequestHandler is called on an io thread and must not block; it may answer
// later from any thread. start(), stop() and the destructor must be called
// from one controlling thread that is not an io thread.
//
// Connection lifecycle (one request at a time; pipelined requests wait in
// the read buffer and are answered in order):
//   wait for the first byte   idle_timeout   (keep-alive idle; close on expiry)
//   read the header           header_timeout (slowloris; close on expiry)
//   read the body             body_timeout
//   handler ... respond       no timeout     (the handler owns this time)
//   write the response        write_timeout
// A streamed answer (ResponseStream) writes its header and then each batch
// of bytes as the handler produces them, each write bounded by
// write_timeout; meanwhile the server waits for the client to go away (a
// read that ends in EOF or an error closes the connection and fails the
// producer's next write).
// Protocol failures are answered with an ECS error body and the connection
// is closed (after draining what the client is still sending, for at most a
// second):
//   header (request line + fields) > header_limit, or one field > 64 KiB
//                               -> 431 InvalidParameter
//   body > body_limit           -> 413 InvalidParameter
//   malformed HTTP              -> 400 InvalidParameter
//   client closed mid-request, timeouts, socket errors -> close, no answer
//   handler threw, or dropped its Responder without calling it
//                               -> 500 InternalError
// Error body: {"RequestId":"<uuid>","HostId":"shareledger","Code":"...",
//              "Message":"...","Recommend":""}
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include "events/result.h"

namespace sl::api {

namespace http = boost::beast::http;
using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;

// Answers one request. Call it exactly once, from any thread; the server
// posts the response back to the connection's strand. Later calls are
// ignored. Calling it after the connection closed, or after the server
// stopped, is a harmless no-op. Dropping every copy without calling it
// answers 500 InternalError. The server sets `Server: shareledger`, the
// HTTP version, keep-alive (from the request; `Connection: close` set by the
// handler is honoured) and Content-Length; for HEAD the body is not sent.
// To send a body while it is produced, start a ResponseStream instead.
using Responder = std::function<void(Response)>;

struct PeerInfo {
  std::string remote_address;  // "127.0.0.1", "::1"; empty if unknown
  unsigned short remote_port = 0;
};

// Called on an io thread, once per request; `peer` is valid only during the
// call. Must not block: hand long work elsewhere and call `respond` later.
// Exceptions are caught and answered with 500 InternalError.
using RequestHandler =
    std::function<void(Request&& req, const PeerInfo& peer, Responder respond)>;

// Called on the connection's strand for a request with
// boost::beast::websocket::is_upgrade(req). Takes ownership of the stream
// (its executor is the connection's strand; no timeout is armed). Bytes the
// client pipelined after the upgrade request are discarded. Upgraded streams
// are no longer tracked by the server: their owner closes them; stop() stops
// the io_context after draining HTTP sessions, abandoning their pending
// operations, and the owner must destroy them before the HttpServer. When
// null, upgrade requests go to the RequestHandler.
using UpgradeHandler =
    std::function<void(boost::beast::tcp_stream&& stream, Request&& req)>;

struct HttpServerOptions {
  std::string listen = "127.0.0.1:0";    // host:port, port 0 = ephemeral; [v6]:port
  int threads = 0;                        // 0 = std::thread::hardware_concurrency()
  std::size_t header_limit = 128 * 1024;  // request line + headers
  std::size_t body_limit = 1 << 20;
  std::chrono::milliseconds header_timeout{10000};  // whole header, from its first byte
  std::chrono::milliseconds idle_timeout{60000};    // keep-alive idle, waiting for a request
  std::chrono::milliseconds body_timeout{60000};    // whole body, after the header
  std::chrono::milliseconds write_timeout{60000};   // whole response; each write of a streamed one
  std::size_t stream_buffer_bytes = 64 * 1024;       // a streamed answer's unsent bytes before its producer waits
  std::chrono::milliseconds drain_timeout{5000};    // stop(): wait for in-flight requests
};

struct StreamChannel;

// The body of a streamed answer, sent while it is produced: chunked
// (`Transfer-Encoding: chunked`) to HTTP/1.1 clients; to HTTP/1.0 clients as
// raw bytes ended by closing the connection.
// Thread safety: one producer thread at a time calls write() and finish().
class ResponseStream {
 public:
  // Starts the answer to the request `respond` belongs to: sends `head`'s
  // status and fields (its body and Content-Length are dropped); the server
  // sets Server, the version, keep-alive (as for a Responder) and
  // Transfer-Encoding. The request then counts as answered: later calls of
  // `respond` are ignored, and a stream started after `respond` was called
  // is closed (write() returns false). A Responder the server did not make
  // (a test calling a handler directly) gets one whole Response, with every
  // byte written, at finish().
  static std::unique_ptr<ResponseStream> start(const Responder& respond, Response head);

  ResponseStream(const ResponseStream&) = delete;
  ResponseStream& operator=(const ResponseStream&) = delete;
  // Without finish(), the connection closes once the bytes written are
  // sent: the client sees a truncated body.
  ~ResponseStream();

  // Queues `bytes` for the client. Waits while stream_buffer_bytes or more
  // are still unsent, so a slow client holds the producer back instead of
  // growing the queue.
  // true: queued. false: the client is gone (closed the connection, a write
  // failed or timed out, the server stopped): nothing more will be sent;
  // stop producing.
  // REQUIRES: not called on an io thread (it may wait for one); finish() not
  // called yet.
  bool write(std::string_view bytes);

  // Queues `last` and ends the body; a keep-alive connection then reads its
  // next request. Never waits (`last` may exceed the bound). Later calls are
  // ignored.
  void finish(std::string_view last = {});

 private:
  ResponseStream() = default;

  std::shared_ptr<StreamChannel> channel_;  // to the session; null when collecting
  Responder collect_into_;                  // not the server's: gets collected_ at finish()
  Response collected_;
  bool finished_ = false;
};

class Listener;
struct ServerCore;

class HttpServer {
 public:
  // The handler is required; the upgrade handler may be null.
  HttpServer(HttpServerOptions options, RequestHandler handler,
             UpgradeHandler upgrade = nullptr);
  ~HttpServer();  // stop()

  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and listens on options.listen, then starts the io threads.
  // OK: accepting connections; port() is the bound port.
  // 400 InvalidParameter: `listen` is not host:port or the host does not
  //   resolve.
  // 500 InternalError: open/bind/listen failed (address in use, permission
  //   denied...); the message names the address and the system error.
  // 500 InternalError: already started (or stopped).
  sl::Status start();

  // The bound port; 0 before a successful start().
  unsigned short port() const { return port_; }

  // Graceful shutdown, for SIGTERM. Stops accepting, closes idle keep-alive
  // connections, lets in-flight requests finish (their responses carry
  // `Connection: close`) for up to drain_timeout, then closes whatever is
  // left, stops the io_context and joins the io threads. Responders called
  // afterwards are no-ops. Idempotent; a no-op before start().
  // REQUIRES: not called on an io thread.
  void stop();

  // The io_context the io threads run; for timers and for work that must
  // run on the server's threads. Valid for the server's lifetime.
  boost::asio::io_context& io() { return ioc_; }

 private:
  std::shared_ptr<ServerCore> core_;
  boost::asio::io_context ioc_;
  std::unique_ptr<boost::asio::executor_work_guard<
      boost::asio::io_context::executor_type>> work_;
  std::shared_ptr<Listener> listener_;
  std::vector<std::thread> threads_;
  int thread_count_;
  unsigned short port_ = 0;
  bool started_ = false;
  bool stopped_ = false;
};

}  // namespace sl::api
