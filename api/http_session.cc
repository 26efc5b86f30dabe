#include "api/http_session.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <limits>
#include <new>
#include <stdexcept>
#include <string>
#include <utility>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/chunk_encode.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/rfc7230.hpp>
#include <boost/beast/http/serializer.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/websocket/rfc6455.hpp>

#include "api/ids.h"

namespace sl::api {

namespace beast = boost::beast;
namespace net = boost::asio;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;

namespace {

constexpr std::size_t kFirstReadBytes = 16 * 1024;
// Beast's fields container stores offsets in 16 bits: name or value + 2 must
// fit, or it throws std::length_error.
constexpr std::size_t kMaxFieldBytes = 0xFFFF;
// After an error answer: read and discard what the client still sends, so
// closing does not reset the connection before it reads the answer.
constexpr auto kLingerTime = std::chrono::seconds(1);
constexpr std::size_t kLingerMaxBytes = 8 << 20;
constexpr std::size_t kLingerChunkBytes = 64 * 1024;

void append_json_string(std::string& out, std::string_view s) {
  out += '"';
  for (const char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char esc[7];
          std::snprintf(esc, sizeof esc, "\\u%04X", static_cast<unsigned>(c));
          out += esc;
        } else {
          out += c;
        }
    }
  }
  out += '"';
}

// An ECS error answer. Version, keep-alive and Content-Length are set later.
Response error_response(http::status status, std::string_view code, std::string_view message) {
  std::string body = "{\"RequestId\":";
  append_json_string(body, new_request_id());
  body += ",\"HostId\":\"shareledger\",\"Code\":";
  append_json_string(body, code);
  body += ",\"Message\":";
  append_json_string(body, message);
  body += ",\"Recommend\":\"\"}";
  Response res{status, 11};
  res.set(http::field::content_type, "application/json;charset=utf-8");
  res.body() = std::move(body);
  return res;
}

Response internal_error() {
  return error_response(http::status::internal_server_error, "InternalError",
                        "The request processing has failed due to some unknown error.");
}

struct ProtocolFailure {
  http::status status;
  std::string message;
};

// The answer for a failed header/body read, or nullopt when there is no one
// to answer (client gone, timeout, socket error).
std::optional<ProtocolFailure> classify(const beast::error_code& ec, bool header_done,
                                        const HttpServerOptions& o) {
  const auto too_large_header = [&] {
    return ProtocolFailure{http::status::request_header_fields_too_large,
                           "The request header is too large (limit " +
                               std::to_string(o.header_limit) + " bytes, " +
                               std::to_string(kMaxFieldBytes - 2) + " per field)."};
  };
  const auto too_large_body = [&] {
    return ProtocolFailure{http::status::payload_too_large,
                           "The request body is too large (limit " +
                               std::to_string(o.body_limit) + " bytes)."};
  };
  if (ec == http::error::header_limit) return too_large_header();
  if (ec == http::error::body_limit) return too_large_body();
  if (ec == http::error::buffer_overflow) return header_done ? too_large_body() : too_large_header();
  if (ec == http::error::end_of_stream || ec == http::error::partial_message ||
      ec == http::error::short_read) {
    return std::nullopt;
  }
  if (ec.category() == http::make_error_code(http::error::bad_method).category()) {
    return ProtocolFailure{http::status::bad_request,
                           "The request is not valid HTTP/1.1: " + ec.message() + "."};
  }
  return std::nullopt;
}

// Runs `f` on the session behind `session` under the gate, so that nothing
// is posted to an io_context stop() is done with. false: the session or the
// server is gone, `f` did not run.
template <class F>
bool reach(ServerCore& core, const std::weak_ptr<HttpSession>& session, F&& f) {
  std::shared_lock lock(core.gate_mu);
  if (!core.gate_open) return false;
  const std::shared_ptr<HttpSession> s = session.lock();
  if (!s) return false;
  f(*s);
  return true;
}

// Shared by every copy of one request's Responder: delivers exactly once,
// and answers 500 if every copy is dropped without being called.
class PendingResponse {
 public:
  PendingResponse(std::shared_ptr<ServerCore> core, std::weak_ptr<HttpSession> session,
                  std::uint64_t gen)
      : core_(std::move(core)), session_(std::move(session)), gen_(gen) {}
  PendingResponse(const PendingResponse&) = delete;
  PendingResponse& operator=(const PendingResponse&) = delete;

  ~PendingResponse() {
    if (!called_.exchange(true)) deliver(internal_error());
  }

  void respond(Response res) {
    if (!called_.exchange(true)) deliver(std::move(res));
  }

  // The channel of a streamed answer; closed when the request was answered
  // already, or its session or the server is gone.
  std::shared_ptr<StreamChannel> open_stream(Response head) {
    auto channel = std::make_shared<StreamChannel>(core_, session_);
    const bool started = !called_.exchange(true) && reach(*core_, session_, [&](HttpSession& s) {
      s.post_stream_start(gen_, std::move(head), channel);
    });
    if (!started) channel->close();
    return channel;
  }

 private:
  void deliver(Response res) {
    reach(*core_, session_, [&](HttpSession& s) { s.post_response(gen_, std::move(res)); });
  }

  std::shared_ptr<ServerCore> core_;
  std::weak_ptr<HttpSession> session_;
  std::uint64_t gen_;
  std::atomic<bool> called_{false};
};

// The Responder the server hands its handler. A named type, so that
// ResponseStream::start can find the request behind a Responder
// (std::function::target).
struct SessionResponder {
  std::shared_ptr<PendingResponse> pending;
  void operator()(Response res) const { pending->respond(std::move(res)); }
};

}  // namespace

// ---- ResponseStream --------------------------------------------------------

std::unique_ptr<ResponseStream> ResponseStream::start(const Responder& respond, Response head) {
  std::unique_ptr<ResponseStream> out(new ResponseStream());
  if (const auto* ours = respond.target<SessionResponder>()) {
    out->channel_ = ours->pending->open_stream(std::move(head));
  } else {
    out->collect_into_ = respond;
    out->collected_ = std::move(head);
    out->collected_.body().clear();
  }
  return out;
}

ResponseStream::~ResponseStream() {
  if (finished_ || !channel_) return;
  StreamChannel& c = *channel_;
  {
    std::lock_guard lock(c.mu);
    if (c.closed) return;
    c.dropped = true;
    if (std::exchange(c.session_will_look, true)) return;
  }
  c.wake();
}

bool ResponseStream::write(std::string_view bytes) {
  if (!channel_) {
    collected_.body().append(bytes);
    return true;
  }
  StreamChannel& c = *channel_;
  const std::size_t bound = c.core->options.stream_buffer_bytes;
  bool wake = false;
  {
    std::unique_lock lock(c.mu);
    c.room.wait(lock, [&] { return c.closed || c.unsent < bound; });
    if (c.closed) return false;
    c.queued.append(bytes);
    c.unsent += bytes.size();
    wake = !std::exchange(c.session_will_look, true);
  }
  if (wake) c.wake();
  return true;
}

void ResponseStream::finish(std::string_view last) {
  if (std::exchange(finished_, true)) return;
  if (!channel_) {
    collected_.body().append(last);
    collected_.prepare_payload();
    if (collect_into_) collect_into_(std::move(collected_));
    return;
  }
  StreamChannel& c = *channel_;
  bool wake = false;
  {
    std::lock_guard lock(c.mu);
    if (c.closed) return;
    c.queued.append(last);
    c.unsent += last.size();
    c.finished = true;
    wake = !std::exchange(c.session_will_look, true);
  }
  if (wake) c.wake();
}

// ---- StreamChannel ---------------------------------------------------------

void StreamChannel::close() {
  {
    std::lock_guard lock(mu);
    closed = true;
  }
  room.notify_all();
}

void StreamChannel::wake() {
  if (!reach(*core, session, [](HttpSession& s) { s.post_stream_ready(); })) close();
}

// ---- ServerCore ------------------------------------------------------------

void ServerCore::add(std::shared_ptr<HttpSession> s) {
  std::lock_guard lock(mu_);
  HttpSession* key = s.get();
  sessions_.emplace(key, std::move(s));
}

void ServerCore::remove(HttpSession* s) {
  std::shared_ptr<HttpSession> victim;  // released outside the lock
  {
    std::lock_guard lock(mu_);
    auto it = sessions_.find(s);
    if (it == sessions_.end()) return;
    victim = std::move(it->second);
    sessions_.erase(it);
    if (sessions_.empty()) empty_cv_.notify_all();
  }
}

std::vector<std::shared_ptr<HttpSession>> ServerCore::snapshot() {
  std::lock_guard lock(mu_);
  std::vector<std::shared_ptr<HttpSession>> out;
  out.reserve(sessions_.size());
  for (const auto& [key, s] : sessions_) out.push_back(s);
  return out;
}

bool ServerCore::wait_empty(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  return empty_cv_.wait_for(lock, timeout, [this] { return sessions_.empty(); });
}

void ServerCore::shut() {
  {
    std::unique_lock gate(gate_mu);
    gate_open = false;
  }
  std::unordered_map<HttpSession*, std::shared_ptr<HttpSession>> doomed;
  {
    std::lock_guard lock(mu_);
    doomed.swap(sessions_);
  }
}

// ---- RequestParser ---------------------------------------------------------

void RequestParser::on_field_impl(http::field name, beast::string_view name_string,
                                  beast::string_view value, beast::error_code& ec) {
  if (name_string.size() + 2 > kMaxFieldBytes || value.size() + 2 > kMaxFieldBytes) {
    ec = http::error::header_limit;
    return;
  }
  try {
    get().insert(name, name_string, value);
  } catch (const std::length_error&) {
    ec = http::error::header_limit;
  } catch (const std::bad_alloc&) {
    ec = http::error::bad_alloc;
  }
}

// ---- HttpSession -----------------------------------------------------------

// A streamed answer in progress. Heap-allocated per streamed answer, so
// sessions that never stream pay only for a null pointer.
struct HttpSession::OutStream {
  OutStream(std::shared_ptr<StreamChannel> c, http::response_header<>&& h)
      : channel(std::move(c)), head(std::move(h)) {}

  std::shared_ptr<StreamChannel> channel;
  http::response<http::empty_body> head;
  std::optional<http::response_serializer<http::empty_body>> head_writer;
  std::string sending;   // taken from channel->queued; in flight while `writing`
  bool chunked = true;   // false for HTTP/1.0: raw bytes, then close
  bool writing = false;  // a write is in flight
  bool ended = false;    // the write in flight is the last one
};

HttpSession::HttpSession(tcp::socket&& socket, std::shared_ptr<ServerCore> core)
    : core_(std::move(core)), ex_(socket.get_executor()), stream_(std::move(socket)) {
  beast::error_code ec;
  const tcp::endpoint remote = stream_.socket().remote_endpoint(ec);
  if (!ec) {
    peer_.remote_address = remote.address().to_string();
    peer_.remote_port = remote.port();
  }
}

HttpSession::~HttpSession() {
  if (out_) out_->channel->close();
}

void HttpSession::run() {
  core_->add(shared_from_this());
  net::dispatch(ex_, beast::bind_front_handler(&HttpSession::do_wait_request, shared_from_this()));
}

void HttpSession::post_response(std::uint64_t gen, Response res) {
  net::post(ex_, [self = shared_from_this(), gen, res = std::move(res)]() mutable {
    self->on_response(gen, std::move(res));
  });
}

void HttpSession::post_stream_start(std::uint64_t gen, Response head, std::shared_ptr<StreamChannel> channel) {
  net::post(ex_, [self = shared_from_this(), gen, head = std::move(head), channel = std::move(channel)]() mutable {
    self->on_stream_start(gen, std::move(head), std::move(channel));
  });
}

void HttpSession::post_stream_ready() {
  net::post(ex_, [self = shared_from_this()] { self->on_stream_ready(); });
}

void HttpSession::post_drain() {
  net::post(ex_, [self = shared_from_this()] {
    if (self->state_ == State::kIdle) self->do_close();
  });
}

void HttpSession::post_close() {
  net::post(ex_, [self = shared_from_this()] { self->do_close(); });
}

// Between requests: a fresh parser; then wait up to idle_timeout for the
// first byte unless a pipelined request is already buffered.
void HttpSession::do_wait_request() {
  if (state_ == State::kClosed) return;
  if (core_->draining) return do_close();
  const HttpServerOptions& o = core_->options;
  parser_.emplace();
  parser_->header_limit(static_cast<std::uint32_t>(
      std::min<std::size_t>(o.header_limit, std::numeric_limits<std::uint32_t>::max())));
  parser_->body_limit(o.body_limit);
  if (buffer_.size() > 0) return do_read_header();
  state_ = State::kIdle;
  stream_.expires_after(o.idle_timeout);
  stream_.async_read_some(buffer_.prepare(kFirstReadBytes),
                          beast::bind_front_handler(&HttpSession::on_first_bytes, shared_from_this()));
}

void HttpSession::on_first_bytes(beast::error_code ec, std::size_t n) {
  buffer_.commit(n);
  if (ec) return fail(ec);  // closed, idle timeout, stop(): nothing to answer
  do_read_header();
}

void HttpSession::do_read_header() {
  state_ = State::kReadingHeader;
  stream_.expires_after(core_->options.header_timeout);
  http::async_read_header(stream_, buffer_, *parser_,
                          beast::bind_front_handler(&HttpSession::on_read_header, shared_from_this()));
}

void HttpSession::on_read_header(beast::error_code ec, std::size_t) {
  if (ec) return do_write_error(ec);
  if (parser_->is_done()) return do_handle();
  const Request& req = parser_->get();
  if (req.version() >= 11 && beast::iequals(req[http::field::expect], "100-continue")) {
    return do_write_continue();
  }
  do_read_body();
}

void HttpSession::do_write_continue() {
  state_ = State::kReadingBody;
  stream_.expires_after(core_->options.write_timeout);
  http::async_write(stream_, continue_,
                    beast::bind_front_handler(&HttpSession::on_write_continue, shared_from_this()));
}

void HttpSession::on_write_continue(beast::error_code ec, std::size_t) {
  if (ec) return fail(ec);
  do_read_body();
}

void HttpSession::do_read_body() {
  state_ = State::kReadingBody;
  stream_.expires_after(core_->options.body_timeout);
  http::async_read(stream_, buffer_, *parser_,
                   beast::bind_front_handler(&HttpSession::on_read_body, shared_from_this()));
}

void HttpSession::on_read_body(beast::error_code ec, std::size_t) {
  if (ec) return do_write_error(ec);
  do_handle();
}

void HttpSession::do_handle() {
  stream_.expires_never();
  Request req = parser_->release();
  parser_.reset();

  if (core_->on_upgrade && websocket::is_upgrade(req)) {
    state_ = State::kClosed;  // the stream is no longer ours
    core_->remove(this);      // `this` stays alive: the calling handler holds a reference
    buffer_.clear();
    try {
      core_->on_upgrade(std::move(stream_), std::move(req));
    } catch (...) {
      beast::error_code ignored;
      stream_.socket().close(ignored);  // if the handler threw before taking it
    }
    return;
  }

  state_ = State::kHandling;
  const std::uint64_t gen = ++gen_;
  req_version_ = req.version();
  req_keep_alive_ = req.keep_alive();
  req_head_ = req.method() == http::verb::head;
  auto pending = std::make_shared<PendingResponse>(core_, weak_from_this(), gen);
  Responder respond = SessionResponder{pending};
  try {
    core_->on_request(std::move(req), peer_, std::move(respond));
  } catch (...) {
    pending->respond(internal_error());
  }
}

// What the server sets in every answer to a handled request: the request's
// version, Server, and keep-alive unless the request, the handler
// (`Connection: close`) or stop() rules it out.
template <class Body>
void HttpSession::stamp(http::response<Body>& res) const {
  const bool handler_close = http::token_list{res[http::field::connection]}.exists("close");
  res.version(req_version_);
  res.set(http::field::server, "shareledger");
  res.keep_alive(req_keep_alive_ && !handler_close && !core_->draining);
}

void HttpSession::on_response(std::uint64_t gen, Response res) {
  if (state_ != State::kHandling || gen != gen_) return;
  stamp(res);
  try {
    res.prepare_payload();  // throws for a body on 1xx/204/304
  } catch (const std::exception&) {
    const bool keep_alive = res.keep_alive();
    res = internal_error();
    res.version(req_version_);
    res.set(http::field::server, "shareledger");
    res.keep_alive(keep_alive);
    res.prepare_payload();
  }
  if (req_head_) res.body().clear();  // Content-Length still describes the GET answer
  res_.emplace(std::move(res));
  do_write();
}

void HttpSession::do_write() {
  state_ = State::kWriting;
  const bool keep_alive = res_->keep_alive();
  stream_.expires_after(core_->options.write_timeout);
  http::async_write(stream_, *res_,
                    beast::bind_front_handler(&HttpSession::on_write, shared_from_this(), keep_alive));
}

void HttpSession::on_write(bool keep_alive, beast::error_code ec, std::size_t) {
  res_.reset();
  if (ec) return fail(ec);
  if (!keep_alive) return do_close();
  do_wait_request();
}

void HttpSession::on_stream_start(std::uint64_t gen, Response head, std::shared_ptr<StreamChannel> channel) {
  if (state_ != State::kHandling || gen != gen_) return channel->close();
  state_ = State::kStreaming;
  out_ = std::make_unique<OutStream>(std::move(channel), std::move(head.base()));
  http::response<http::empty_body>& h = out_->head;
  stamp(h);
  // HTTP/1.0 has no chunked coding: the body ends where the connection does.
  out_->chunked = req_version_ >= 11;
  if (!out_->chunked) h.keep_alive(false);
  h.erase(http::field::content_length);
  h.chunked(out_->chunked);
  if (req_head_) {
    out_->ended = true;          // the header is the whole answer,
    out_->channel->close();      // and the producer learns that nothing is sent
  } else {
    do_watch();
  }
  out_->head_writer.emplace(h);
  out_->writing = true;
  stream_.expires_after(core_->options.write_timeout);  // the write's only: a watch read is pending
  http::async_write_header(stream_, *out_->head_writer,
                           beast::bind_front_handler(&HttpSession::on_write_stream, shared_from_this()));
}

// While the answer streams, a client that closes its end or resets the
// connection is noticed here, not at the next write, which may be far off.
// Bytes that arrive are a pipelined request: kept, and no longer watched.
void HttpSession::do_watch() {
  watching_ = true;
  stream_.async_read_some(buffer_.prepare(kFirstReadBytes),
                          beast::bind_front_handler(&HttpSession::on_watch, shared_from_this()));
}

void HttpSession::on_watch(beast::error_code ec, std::size_t n) {
  watching_ = false;
  buffer_.commit(n);
  if (state_ == State::kClosed) return;
  if (out_) {  // still streaming
    if (ec) return fail(ec);
    return;
  }
  // The answer ended and on_stream_end() cancelled this read.
  if (ec && ec != net::error::operation_aborted) return fail(ec);
  do_wait_request();
}

void HttpSession::on_stream_ready() {
  if (state_ != State::kStreaming || !out_ || out_->writing) return;
  do_write_stream();
}

// Takes everything the producer queued and writes it as one chunk; when the
// queue is empty, either ends the body or leaves the next look to the
// producer's next wake-up.
void HttpSession::do_write_stream() {
  StreamChannel& c = *out_->channel;
  bool finished = false;
  bool dropped = false;
  {
    std::lock_guard lock(c.mu);
    out_->sending.swap(c.queued);
    finished = c.finished;
    dropped = c.dropped;
    if (out_->sending.empty() && !finished && !dropped) {
      c.session_will_look = false;
      return;
    }
  }
  // Left without finish(): what was written goes out, then only closing can
  // tell the client that the body is truncated.
  if (dropped && out_->sending.empty()) return do_close();
  auto next = beast::bind_front_handler(&HttpSession::on_write_stream, shared_from_this());
  if (out_->sending.empty()) {
    out_->ended = true;
    if (!out_->chunked) return on_stream_end();
    out_->writing = true;
    stream_.expires_after(core_->options.write_timeout);
    return net::async_write(stream_, http::make_chunk_last(), std::move(next));
  }
  out_->writing = true;
  stream_.expires_after(core_->options.write_timeout);
  if (out_->chunked) {
    net::async_write(stream_, http::make_chunk(net::buffer(out_->sending)), std::move(next));
  } else {
    net::async_write(stream_, net::buffer(out_->sending), std::move(next));
  }
}

void HttpSession::on_write_stream(beast::error_code ec, std::size_t) {
  if (state_ == State::kClosed) return;
  out_->writing = false;
  if (ec) return fail(ec);
  StreamChannel& c = *out_->channel;
  {
    std::lock_guard lock(c.mu);
    c.unsent -= out_->sending.size();
  }
  c.room.notify_all();
  out_->sending.clear();
  if (out_->ended) return on_stream_end();
  do_write_stream();
}

void HttpSession::on_stream_end() {
  const bool keep_alive = out_->head.keep_alive();
  out_.reset();
  if (!keep_alive) return do_close();
  if (!watching_) return do_wait_request();
  // The watch read would be the next request's first read, but without its
  // idle timeout: cancel it; on_watch() goes on to the next request.
  beast::error_code ignored;
  stream_.socket().cancel(ignored);
}

void HttpSession::do_write_error(beast::error_code parse_ec) {
  if (state_ == State::kClosed) return;
  stream_.expires_never();
  const bool header_done = parser_ && parser_->is_header_done();
  std::optional<ProtocolFailure> failure = classify(parse_ec, header_done, core_->options);
  if (!failure) return fail(parse_ec);
  state_ = State::kClosing;
  parser_.reset();
  Response res = error_response(failure->status, "InvalidParameter", failure->message);
  res.set(http::field::server, "shareledger");
  res.keep_alive(false);
  res.prepare_payload();
  res_.emplace(std::move(res));
  stream_.expires_after(core_->options.write_timeout);
  http::async_write(stream_, *res_,
                    beast::bind_front_handler(&HttpSession::on_write_error, shared_from_this()));
}

void HttpSession::on_write_error(beast::error_code ec, std::size_t) {
  res_.reset();
  if (ec) return fail(ec);
  beast::error_code ignored;
  stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
  stream_.expires_after(kLingerTime);  // bounds the whole linger
  buffer_.clear();
  do_linger();
}

void HttpSession::do_linger() {
  stream_.async_read_some(buffer_.prepare(kLingerChunkBytes),
                          beast::bind_front_handler(&HttpSession::on_linger, shared_from_this()));
}

void HttpSession::on_linger(beast::error_code ec, std::size_t n) {
  lingered_ += n;  // discarded: never committed
  if (ec || lingered_ > kLingerMaxBytes) return do_close();
  do_linger();
}

void HttpSession::do_close() {
  if (state_ == State::kClosed) return;
  state_ = State::kClosed;
  // Before the socket closes, so that a client that sees the close knows the
  // producer's next write fails. out_ stays: a write in flight may use it.
  if (out_) out_->channel->close();
  beast::error_code ignored;
  stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
  stream_.close();
  parser_.reset();
  res_.reset();
  core_->remove(this);  // callers hold a reference to `this`
}

// Every failure here is the client's or the network's (reset, timeout,
// closed by stop()); there is nobody to answer, so just close.
void HttpSession::fail(beast::error_code) { do_close(); }

}  // namespace sl::api
