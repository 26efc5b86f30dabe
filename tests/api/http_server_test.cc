#include "api/http_server.h"
#include "bench/hello_server.h"
#include "test_client.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <gtest/gtest.h>

namespace sl::api {
namespace {

namespace beast = boost::beast;
namespace net = boost::asio;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;
using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;
using testing::kClientTimeout;
using testing::MakeRequest;
using testing::TestClient;

std::string RawGet(const std::string& target, const std::string& extra_headers = {}) {
  return "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" + extra_headers + "\r\n";
}

// Answers "METHOD target\nbody" with the peer in X-Peer.
void Echo(Request&& req, const PeerInfo& peer, Responder respond) {
  Response res{http::status::ok, 11};
  res.set(http::field::content_type, "text/plain");
  res.set("X-Peer", peer.remote_address + ":" + std::to_string(peer.remote_port));
  res.body() = std::string(req.method_string()) + " " + std::string(req.target()) + "\n" + req.body();
  respond(std::move(res));
}

Response Ok(std::string body) {
  Response res{http::status::ok, 11};
  res.body() = std::move(body);
  return res;
}

// Hands each request's responder to the test thread.
class ResponderBox {
 public:
  RequestHandler Handler() {
    return [this](Request&& req, const PeerInfo&, Responder respond) {
      std::lock_guard lock(mu_);
      targets_.push_back(std::string(req.target()));
      responders_.push_back(std::move(respond));
      cv_.notify_all();
    };
  }

  // Waits for the n-th (1-based) request and returns its responder.
  Responder Await(std::size_t n) {
    std::unique_lock lock(mu_);
    if (!cv_.wait_for(lock, kClientTimeout, [&] { return responders_.size() >= n; })) return nullptr;
    return responders_[n - 1];
  }

  std::size_t count() {
    std::lock_guard lock(mu_);
    return responders_.size();
  }

  void Clear() {
    std::lock_guard lock(mu_);
    responders_.clear();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> targets_;
  std::vector<Responder> responders_;
};

class HttpServerTest : public ::testing::Test {
 protected:
  HttpServerTest() {
    options_.threads = 2;
    options_.drain_timeout = 1000ms;
  }

  void Start(RequestHandler handler, UpgradeHandler upgrade = nullptr) {
    server_ = std::make_unique<HttpServer>(options_, std::move(handler), std::move(upgrade));
    const sl::Status s = server_->start();
    ASSERT_TRUE(s.ok()) << s.error().message;
    ASSERT_NE(server_->port(), 0);
  }

  unsigned short port() const { return server_->port(); }

  // A fresh connection answers a plain GET.
  void ExpectServing() {
    TestClient c(port());
    ASSERT_FALSE(c.connect_error()) << c.connect_error().message();
    ASSERT_FALSE(c.Send(MakeRequest(http::verb::get, "/alive")));
    Response res;
    ASSERT_FALSE(c.Read(res));
    EXPECT_EQ(res.result(), http::status::ok);
  }

  static void ExpectEcsError(const Response& res, http::status status, const std::string& code) {
    EXPECT_EQ(res.result(), status);
    EXPECT_EQ(res[http::field::content_type], "application/json;charset=utf-8");
    EXPECT_FALSE(res.keep_alive());
    EXPECT_NE(res.body().find("\"Code\":\"" + code + "\""), std::string::npos) << res.body();
    EXPECT_NE(res.body().find("\"HostId\":\"shareledger\""), std::string::npos) << res.body();
    EXPECT_NE(res.body().find("\"Recommend\":\"\""), std::string::npos) << res.body();
    const auto id = res.body().find("\"RequestId\":\"");
    ASSERT_NE(id, std::string::npos) << res.body();
    const std::string uuid = res.body().substr(id + 13, 36);
    EXPECT_EQ(uuid.size(), 36u);
    EXPECT_EQ(uuid[8], '-');
    EXPECT_EQ(uuid[23], '-');
  }

  HttpServerOptions options_;
  std::unique_ptr<HttpServer> server_;
};

TEST_F(HttpServerTest, HandlerEchoIsReturnedWithServerHeaderAndLength) {
  Start(Echo);
  TestClient c(port());
  ASSERT_FALSE(c.Send(MakeRequest(http::verb::post, "/x?a=1", "hello")));
  Response res;
  ASSERT_FALSE(c.Read(res));
  EXPECT_EQ(res.result(), http::status::ok);
  EXPECT_EQ(res.body(), "POST /x?a=1\nhello");
  EXPECT_EQ(res[http::field::server], "shareledger");
  EXPECT_EQ(res[http::field::content_length], "17");
  EXPECT_TRUE(res.keep_alive());
  EXPECT_EQ(std::string(res["X-Peer"]).rfind("127.0.0.1:", 0), 0u) << res["X-Peer"];
}

TEST_F(HttpServerTest, ResponderMayBeCalledLaterFromAnotherThread) {
  std::vector<std::thread> workers;
  std::mutex mu;
  Start([&](Request&& req, const PeerInfo&, Responder respond) {
    std::lock_guard lock(mu);
    workers.emplace_back([target = std::string(req.target()), respond = std::move(respond)] {
      std::this_thread::sleep_for(150ms);
      respond(Ok("late " + target));
    });
  });
  TestClient c(port());
  const auto start = SteadyClock::now();
  ASSERT_FALSE(c.Send(MakeRequest(http::verb::get, "/slow")));
  Response res;
  ASSERT_FALSE(c.Read(res));
  EXPECT_GE(SteadyClock::now() - start, 140ms);
  EXPECT_EQ(res.body(), "late /slow");
  // The connection is still usable.
  ASSERT_FALSE(c.Send(MakeRequest(http::verb::get, "/again")));
  ASSERT_FALSE(c.Read(res));
  EXPECT_EQ(res.body(), "late /again");
  server_->stop();
  for (auto& t : workers) t.join();
}

TEST_F(HttpServerTest, KeepAliveServesSeveralRequestsOnOneConnection) {
  Start(Echo);
  TestClient c(port());
  std::string peer;
  for (int i = 0; i < 5; ++i) {
    const std::string target = "/r" + std::to_string(i);
    ASSERT_FALSE(c.Send(MakeRequest(http::verb::get, target)));
    Response res;
    ASSERT_FALSE(c.Read(res)) << "request " << i;
    EXPECT_EQ(res.body(), "GET " + target + "\n");
    EXPECT_TRUE(res.keep_alive());
    if (i == 0) peer = std::string(res["X-Peer"]);
    EXPECT_EQ(res["X-Peer"], peer);  // same connection
  }
}

TEST_F(HttpServerTest, PipelinedRequestsAreAnsweredInOrder) {
  Start(Echo);
  TestClient c(port());
  ASSERT_FALSE(c.SendRaw(RawGet("/first") + RawGet("/second") + RawGet("/third")));
  for (const char* target : {"/first", "/second", "/third"}) {
    Response res;
    ASSERT_FALSE(c.Read(res)) << target;
    EXPECT_EQ(res.body(), std::string("GET ") + target + "\n");
  }
}

TEST_F(HttpServerTest, Http10RequestIsAnsweredThenClosed) {
  Start(Echo);
  TestClient c(port());
  ASSERT_FALSE(c.SendRaw("GET /old HTTP/1.0\r\n\r\n"));
  Response res;
  ASSERT_FALSE(c.Read(res));
  EXPECT_EQ(res.version(), 10u);
  EXPECT_EQ(res.body(), "GET /old\n");
  EXPECT_FALSE(res.keep_alive());
  EXPECT_TRUE(c.WaitClosed());
}

TEST_F(HttpServerTest, HandlerConnectionCloseIsHonoured) {
  Start([](Request&&, const PeerInfo&, Responder respond) {
    Response res = Ok("bye");
    res.keep_alive(false);
    respond(std::move(res));
  });
  TestClient c(port());
  ASSERT_FALSE(c.Send(MakeRequest(http::verb::get, "/")));
  Response res;
  ASSERT_FALSE(c.Read(res));
  EXPECT_FALSE(res.keep_alive());
  EXPECT_TRUE(c.WaitClosed());
}

TEST_F(HttpServerTest, HeadResponseCarriesLengthButNoBody) {
  Start(Echo);
  TestClient c(port());
  ASSERT_FALSE(c.Send(MakeRequest(http::verb::head, "/h")));
  Response res;
  ASSERT_FALSE(c.Read(res, /*head=*/true));
  EXPECT_EQ(res[http::field::content_length], "8");  // what GET-style "HEAD /h\n" would carry
  EXPECT_EQ(res.body(), "");
  // The connection stays in sync: the next answer parses.
  ASSERT_FALSE(c.Send(MakeRequest(http::verb::get, "/next")));
  ASSERT_FALSE(c.Read(res));
  EXPECT_EQ(res.body(), "GET /next\n");
}

TEST_F(HttpServerTest, ExpectContinueGets100BeforeTheBody) {
  Start(Echo);
  TestClient c(port());
  ASSERT_FALSE(c.SendRaw(
      "POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"));
  Response res;
  ASSERT_FALSE(c.Read(res));
  EXPECT_EQ(res.result(), http::status::continue_);
  ASSERT_FALSE(c.SendRaw("abcde"));
  ASSERT_FALSE(c.Read(res));
  EXPECT_EQ(res.result(), http::status::ok);
  EXPECT_EQ(res.body(), "POST /up\nabcde");
}

TEST_F(HttpServerTest, OversizedHeaderIsRejectedWith431AndServerKeepsServing) {
  Start(Echo);
  {
    TestClient c(port());
    std::string fields;
    for (int i = 0; fields.size() <= 200 * 1024; ++i) {
      fields += "X-Pad-" + std::to_string(i) + ": " + std::string(1000, 'a') + "\r\n";
    }
    ASSERT_FALSE(c.SendRaw(RawGet("/", fields)));
    Response res;
    ASSERT_FALSE(c.Read(res));
    ExpectEcsError(res, http::status::request_header_fields_too_large, "InvalidParameter");
    EXPECT_TRUE(c.WaitClosed());
  }
  ExpectServing();
}

TEST_F(HttpServerTest, SingleHeaderFieldOver64KiBIsRejectedWith431) {
  Start(Echo);
  {
    TestClient c(port());
    ASSERT_FALSE(c.SendRaw(RawGet("/", "X-Big: " + std::string(100 * 1024, 'b') + "\r\n")));
    Response res;
    ASSERT_FALSE(c.Read(res));
    ExpectEcsError(res, http::status::request_header_fields_too_large, "InvalidParameter");
  }
  ExpectServing();
}

TEST_F(HttpServerTest, DeclaredOversizedBodyIsRejectedWith413) {
  Start(Echo);
  TestClient c(port());
  ASSERT_FALSE(c.SendRaw("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2097152\r\n\r\n" +
                         std::string(64 * 1024, 'z')));
  Response res;
  ASSERT_FALSE(c.Read(res));
  ExpectEcsError(res, http::status::payload_too_large, "InvalidParameter");
}

TEST_F(HttpServerTest, ChunkedBodyOverTheLimitIsRejectedWith413) {
  Start(Echo);
  TestClient c(port());
  std::string raw = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
  const std::string chunk(64 * 1024, 'c');
  for (int i = 0; i < 20; ++i) raw += "10000\r\n" + chunk + "\r\n";  // 1.25 MiB
  raw += "0\r\n\r\n";
  ASSERT_FALSE(c.SendRaw(raw));
  Response res;
  ASSERT_FALSE(c.Read(res));
  ExpectEcsError(res, http::status::payload_too_large, "InvalidParameter");
}

TEST_F(HttpServerTest, BodyAtTheLimitIsDelivered) {
  Start([](Request&& req, const PeerInfo&, Responder respond) {
    respond(Ok(std::to_string(req.body().size())));
  });
  TestClient c(port());
  ASSERT_FALSE(c.Send(MakeRequest(http::verb::post, "/", std::string(options_.body_limit, 'q'))));
  Response res;
  ASSERT_FALSE(c.Read(res));
  EXPECT_EQ(res.body(), std::to_string(options_.body_limit));
}

TEST_F(HttpServerTest, SlowHeaderIsClosedAfterHeaderTimeout) {
  options_.header_timeout = 300ms;
  Start(Echo);
  TestClient c(port());
  ASSERT_FALSE(c.SendRaw("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "));
  const auto closed = c.WaitClosed(2000ms);
  ASSERT_TRUE(closed.has_value()) << "still open after 2 s";
  EXPECT_GE(*closed, 250ms);
  EXPECT_LE(*closed, 1500ms);
  ExpectServing();
}

TEST_F(HttpServerTest, IdleKeepAliveUsesIdleTimeoutNotHeaderTimeout) {
  options_.header_timeout = 150ms;
  options_.idle_timeout = 700ms;
  Start(Echo);
  TestClient c(port());
  Response res;
  ASSERT_FALSE(c.Send(MakeRequest(http::verb::get, "/1")));
  ASSERT_FALSE(c.Read(res));
  std::this_thread::sleep_for(350ms);  // longer than header_timeout, idle
  ASSERT_FALSE(c.Send(MakeRequest(http::verb::get, "/2")));
  ASSERT_FALSE(c.Read(res));
  EXPECT_EQ(res.body(), "GET /2\n");
  const auto closed = c.WaitClosed(2000ms);
  ASSERT_TRUE(closed.has_value());
  EXPECT_GE(*closed, 600ms);
}

TEST_F(HttpServerTest, TruncatedBodyThenCloseNeverReachesHandler) {
  std::atomic<int> calls{0};
  Start([&](Request&& req, const PeerInfo& peer, Responder respond) {
    ++calls;
    Echo(std::move(req), peer, std::move(respond));
  });
  {
    TestClient c(port());
    ASSERT_FALSE(c.SendRaw("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789"));
    c.Close();
  }
  {
    TestClient c(port());  // half a header, then gone
    ASSERT_FALSE(c.SendRaw("GET / HTTP/1.1\r\nHo"));
    c.Close();
  }
  ExpectServing();
  EXPECT_EQ(calls.load(), 1);
}

TEST_F(HttpServerTest, GarbageBytesAreRejectedWith400) {
  Start(Echo);
  {
    TestClient c(port());
    const char kGarbage[] = "\x16\x03\x01\x02\x00\x01\xfc\x03\x03 garbage\r\n\r\n";
    ASSERT_FALSE(c.SendRaw(std::string(kGarbage, sizeof kGarbage - 1)));
    Response res;
    if (!c.Read(res)) ExpectEcsError(res, http::status::bad_request, "InvalidParameter");
    EXPECT_TRUE(c.WaitClosed());
  }
  {
    TestClient c(port());
    ASSERT_FALSE(c.SendRaw("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 12abc\r\n\r\n"));
    Response res;
    ASSERT_FALSE(c.Read(res));
    ExpectEcsError(res, http::status::bad_request, "InvalidParameter");
  }
  ExpectServing();
}

TEST_F(HttpServerTest, TenThousandQueryParamsWithinTheLimitAreDelivered) {
  std::string delivered;
  Start([&](Request&& req, const PeerInfo&, Responder respond) {
    delivered = std::string(req.target());
    respond(Ok(std::to_string(req.target().size())));
  });
  std::string target = "/?Action=DescribeImages";
  for (int i = 0; i < 10000; ++i) target += "&P" + std::to_string(i) + "=" + std::to_string(i);
  ASSERT_LT(target.size(), options_.header_limit);
  TestClient c(port());
  ASSERT_FALSE(c.Send(MakeRequest(http::verb::get, target)));
  Response res;
  ASSERT_FALSE(c.Read(res));
  EXPECT_EQ(res.result(), http::status::ok);
  EXPECT_EQ(res.body(), std::to_string(target.size()));
  EXPECT_EQ(delivered, target);
}

TEST_F(HttpServerTest, StopLetsAnInFlightRequestFinish) {
  ResponderBox box;
  Start(box.Handler());
  TestClient c(port());
  ASSERT_FALSE(c.Send(MakeRequest(http::verb::get, "/inflight")));
  Responder respond = box.Await(1);
  ASSERT_TRUE(respond);

  std::thread late([&] {
    std::this_thread::sleep_for(200ms);
    respond(Ok("finished"));
  });
  const auto start = SteadyClock::now();
  server_->stop();
  const auto took = SteadyClock::now() - start;
  late.join();

  EXPECT_GE(took, 150ms);
  EXPECT_LT(took, 900ms);  // did not wait for drain_timeout
  Response res;
  ASSERT_FALSE(c.Read(res));
  EXPECT_EQ(res.body(), "finished");
  EXPECT_FALSE(res.keep_alive());
  EXPECT_TRUE(c.WaitClosed());
  TestClient after(server_->port());
  EXPECT_TRUE(after.connect_error());  // no longer listening
}

TEST_F(HttpServerTest, StopClosesIdleConnectionsPromptly) {
  Start(Echo);
  TestClient c(port());
  ASSERT_FALSE(c.Send(MakeRequest(http::verb::get, "/")));
  Response res;
  ASSERT_FALSE(c.Read(res));
  const auto start = SteadyClock::now();
  server_->stop();
  EXPECT_LT(SteadyClock::now() - start, 500ms);
  EXPECT_TRUE(c.WaitClosed());
}

TEST_F(HttpServerTest, StopGivesUpOnStuckHandlersAfterDrainTimeout) {
  options_.drain_timeout = 300ms;
  ResponderBox box;
  Start(box.Handler());
  TestClient c1(port());
  TestClient c2(port());
  ASSERT_FALSE(c1.Send(MakeRequest(http::verb::get, "/stuck1")));
  Responder respond1 = box.Await(1);
  ASSERT_FALSE(c2.Send(MakeRequest(http::verb::get, "/stuck2")));
  Responder respond2 = box.Await(2);
  ASSERT_TRUE(respond1 && respond2);
  const auto start = SteadyClock::now();
  server_->stop();
  EXPECT_GE(SteadyClock::now() - start, 250ms);
  EXPECT_LT(SteadyClock::now() - start, 1500ms);
  EXPECT_TRUE(c1.WaitClosed());
  EXPECT_TRUE(c2.WaitClosed());
  respond1(Ok("too late"));  // after stop: a no-op
  box.Clear();
  server_.reset();
  respond2(Ok("much too late"));  // after the server is gone: still a no-op
}

TEST_F(HttpServerTest, ResponderAfterTheClientLeftIsHarmless) {
  ResponderBox box;
  Start(box.Handler());
  {
    TestClient c(port());
    ASSERT_FALSE(c.Send(MakeRequest(http::verb::get, "/gone")));
    ASSERT_TRUE(box.Await(1));
    c.Close();
  }
  std::this_thread::sleep_for(50ms);
  box.Await(1)(Ok("nobody listens"));
  TestClient c(port());
  ASSERT_FALSE(c.Send(MakeRequest(http::verb::get, "/next")));
  Responder second = box.Await(2);
  ASSERT_TRUE(second);
  second(Ok("next"));
  Response res;
  ASSERT_FALSE(c.Read(res));
  EXPECT_EQ(res.body(), "next");
}

TEST_F(HttpServerTest, SecondCallOfAResponderIsIgnored) {
  Start([](Request&& req, const PeerInfo&, Responder respond) {
    respond(Ok("first " + std::string(req.target())));
    respond(Ok("second " + std::string(req.target())));
  });
  TestClient c(port());
  Response res;
  for (const char* target : {"/a", "/b"}) {
    ASSERT_FALSE(c.Send(MakeRequest(http::verb::get, target)));
    ASSERT_FALSE(c.Read(res));
    EXPECT_EQ(res.body(), std::string("first ") + target);
  }
}

TEST_F(HttpServerTest, DroppedResponderAnswers500) {
  Start([](Request&&, const PeerInfo&, Responder) {});
  TestClient c(port());
  ASSERT_FALSE(c.Send(MakeRequest(http::verb::get, "/")));
  Response res;
  ASSERT_FALSE(c.Read(res));
  EXPECT_EQ(res.result(), http::status::internal_server_error);
  EXPECT_NE(res.body().find("\"Code\":\"InternalError\""), std::string::npos);
  EXPECT_TRUE(res.keep_alive());  // not a protocol error: the connection stays
}

// Runs each request's `produce` on a thread of its own with a ResponseStream
// (a plain 200 head), as a handler whose body comes from elsewhere would.
class StreamingHandler {
 public:
  explicit StreamingHandler(std::function<void(ResponseStream&)> produce) : produce_(std::move(produce)) {}
  ~StreamingHandler() { Join(); }

  RequestHandler Handler() {
    return [this](Request&&, const PeerInfo&, Responder respond) {
      std::shared_ptr<ResponseStream> out = ResponseStream::start(respond, Response{http::status::ok, 11});
      std::lock_guard lock(mu_);
      threads_.emplace_back([this, out] { produce_(*out); });
    };
  }

  void Join() {
    std::vector<std::thread> threads;
    {
      std::lock_guard lock(mu_);
      threads.swap(threads_);
    }
    for (std::thread& t : threads) t.join();
  }

 private:
  std::function<void(ResponseStream&)> produce_;
  std::mutex mu_;
  std::vector<std::thread> threads_;
};

// The most the server's socket may hold unsent (tcp_wmem's maximum).
std::size_t SendBufferMax() {
  std::ifstream in("/proc/sys/net/ipv4/tcp_wmem");
  std::size_t min = 0, def = 0, max = 0;
  in >> min >> def >> max;
  return max;
}

TEST_F(HttpServerTest, AStreamProducerWaitsForASlowClientAndStopsWhenItLeaves) {
  options_.stream_buffer_bytes = 64 * 1024;
  constexpr std::size_t kChunk = 64 * 1024;
  constexpr std::size_t kChunks = 1024;  // 64 MiB
  constexpr int kReceiveBuffer = 64 * 1024;  // the client's; the kernel may double it
  // What may leave the producer while the client reads nothing: the kernel's
  // buffers at both ends, the server's bound, the chunk being written.
  const std::size_t most = SendBufferMax() + 2 * kReceiveBuffer + options_.stream_buffer_bytes + kChunk;
  ASSERT_LT(most, kChunks * kChunk);
  std::mutex mu;
  std::condition_variable cv;
  std::optional<std::size_t> accepted;  // set when the producer stops: chunks write() took
  StreamingHandler streaming([&](ResponseStream& out) {
    const std::string chunk(kChunk, 'x');
    std::size_t n = 0;
    while (n < kChunks && out.write(chunk)) ++n;
    out.finish();
    std::lock_guard lock(mu);
    accepted = n;
    cv.notify_all();
  });
  Start(streaming.Handler());
  TestClient c(port(), kReceiveBuffer);
  EXPECT_FALSE(c.Send(MakeRequest(http::verb::get, "/big")));
  http::response_parser<http::string_body> p;
  EXPECT_FALSE(c.ReadHeader(p));
  EXPECT_TRUE(p.get().chunked());
  {
    // The client reads nothing. A producer that is not held back goes past
    // `most` within this wait (tens of MB even on a loaded machine); one that
    // is held back never finishes. The check is on bytes, not on time.
    std::unique_lock lock(mu);
    EXPECT_FALSE(cv.wait_for(lock, 500ms, [&] { return accepted.has_value(); }))
        << "the producer wrote all " << kChunks * kChunk << " bytes to a client that reads nothing";
  }
  c.Close();
  {
    std::unique_lock lock(mu);
    EXPECT_TRUE(cv.wait_for(lock, kClientTimeout, [&] { return accepted.has_value(); }))
        << "the producer still waits after the client left";
    EXPECT_LE(accepted.value_or(kChunks) * kChunk, most);
  }
  server_->stop();  // releases a producer the failures above left waiting, before it is joined
}

TEST_F(HttpServerTest, AStreamToAnHttp10ClientIsRawBytesEndedByClosing) {
  StreamingHandler streaming([](ResponseStream& out) {
    out.write("a");
    out.write("b");
    out.finish("c");
  });
  Start(streaming.Handler());
  TestClient c(port());
  ASSERT_FALSE(c.SendRaw("GET /old HTTP/1.0\r\n\r\n"));
  Response res;
  // Neither chunked nor sized: the read ends only because the server closed.
  ASSERT_FALSE(c.Read(res));
  EXPECT_EQ(res.version(), 10u);
  EXPECT_FALSE(res.chunked());
  EXPECT_EQ(res.count(http::field::content_length), 0u);
  EXPECT_EQ(res.body(), "abc");
}

TEST_F(HttpServerTest, AStreamDroppedWithoutFinishClosesTheConnection) {
  StreamingHandler streaming([](ResponseStream& out) { out.write("partial"); });
  Start(streaming.Handler());
  TestClient c(port());
  ASSERT_FALSE(c.Send(MakeRequest(http::verb::get, "/")));
  http::response_parser<http::string_body> p;
  ASSERT_FALSE(c.ReadHeader(p));
  beast::error_code ec;
  while (!ec && !p.is_done()) ec = c.ReadSome(p);
  EXPECT_EQ(ec, http::error::partial_message) << ec.message();
  EXPECT_EQ(p.get().body(), "partial");
}

TEST_F(HttpServerTest, AStreamStartedAfterTheResponderWasCalledIsClosed) {
  std::atomic<int> wrote{-1};
  Start([&](Request&&, const PeerInfo&, Responder respond) {
    respond(Ok("whole"));
    wrote = ResponseStream::start(respond, Response{http::status::ok, 11})->write("late");
  });
  TestClient c(port());
  ASSERT_FALSE(c.Send(MakeRequest(http::verb::get, "/")));
  Response res;
  ASSERT_FALSE(c.Read(res));
  EXPECT_EQ(res.body(), "whole");
  EXPECT_EQ(wrote, 0);
}

TEST_F(HttpServerTest, ThrowingHandlerAnswers500) {
  Start([](Request&&, const PeerInfo&, Responder) { throw std::runtime_error("boom"); });
  TestClient c(port());
  ASSERT_FALSE(c.Send(MakeRequest(http::verb::get, "/")));
  Response res;
  ASSERT_FALSE(c.Read(res));
  EXPECT_EQ(res.result(), http::status::internal_server_error);
  EXPECT_NE(res.body().find("\"Code\":\"InternalError\""), std::string::npos);
}

TEST_F(HttpServerTest, BodyOnA204IsAnswered500InsteadOfBreakingTheSession) {
  Start([](Request&& req, const PeerInfo&, Responder respond) {
    Response res{req.target() == "/bad" ? http::status::no_content : http::status::ok, 11};
    res.body() = "not allowed on 204";
    respond(std::move(res));
  });
  TestClient c(port());
  Response res;
  ASSERT_FALSE(c.Send(MakeRequest(http::verb::get, "/bad")));
  ASSERT_FALSE(c.Read(res));
  EXPECT_EQ(res.result(), http::status::internal_server_error);
  ASSERT_FALSE(c.Send(MakeRequest(http::verb::get, "/good")));
  ASSERT_FALSE(c.Read(res));
  EXPECT_EQ(res.result(), http::status::ok);
}

TEST_F(HttpServerTest, WebSocketUpgradeReachesTheUpgradeHandler) {
  struct Feed {
    explicit Feed(beast::tcp_stream&& s) : ws(std::move(s)) {}
    websocket::stream<beast::tcp_stream> ws;
    Request req;
    beast::flat_buffer buffer;
  };
  std::atomic<int> http_calls{0};
  std::mutex mu;
  std::string upgrade_target;
  Start(
      [&](Request&& req, const PeerInfo& peer, Responder respond) {
        ++http_calls;
        Echo(std::move(req), peer, std::move(respond));
      },
      [&](beast::tcp_stream&& stream, Request&& req) {
        {
          std::lock_guard lock(mu);
          upgrade_target = std::string(req.target());
        }
        auto feed = std::make_shared<Feed>(std::move(stream));
        feed->req = std::move(req);
        feed->ws.async_accept(feed->req, [feed](beast::error_code ec) {
          if (ec) return;
          feed->ws.async_read(feed->buffer, [feed](beast::error_code ec, std::size_t) {
            if (ec) return;
            feed->ws.text(true);
            feed->ws.async_write(feed->buffer.data(), [feed](beast::error_code, std::size_t) {});
          });
        });
      });

  net::io_context ioc;
  websocket::stream<beast::tcp_stream> ws(ioc);
  beast::error_code ec = net::error::would_block;
  beast::get_lowest_layer(ws).async_connect(
      tcp::endpoint(net::ip::make_address("127.0.0.1"), port()), [&](beast::error_code e) {
        if (e) {
          ec = e;
          return;
        }
        ws.async_handshake("127.0.0.1", "/v1/feed", [&](beast::error_code e) { ec = e; });
      });
  ioc.run_for(kClientTimeout);
  ASSERT_FALSE(ec) << ec.message();
  {
    std::lock_guard lock(mu);
    EXPECT_EQ(upgrade_target, "/v1/feed");
  }

  ws.text(true);
  std::string echoed;
  beast::flat_buffer buffer;
  ec = net::error::would_block;
  ws.async_write(net::buffer(std::string_view("ping")), [&](beast::error_code e, std::size_t) {
    if (e) {
      ec = e;
      return;
    }
    ws.async_read(buffer, [&](beast::error_code e, std::size_t) { ec = e; });
  });
  ioc.restart();
  ioc.run_for(kClientTimeout);
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_EQ(beast::buffers_to_string(buffer.data()), "ping");
  EXPECT_EQ(http_calls.load(), 0);
  beast::get_lowest_layer(ws).close();
  server_->stop();
}

TEST_F(HttpServerTest, UpgradeRequestGoesToHandlerWithoutUpgradeHandler) {
  Start(Echo);
  TestClient c(port());
  ASSERT_FALSE(c.SendRaw(RawGet("/v1/feed",
                                "Connection: Upgrade\r\nUpgrade: websocket\r\n"
                                "Sec-WebSocket-Version: 13\r\n"
                                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n")));
  Response res;
  ASSERT_FALSE(c.Read(res));
  EXPECT_EQ(res.body(), "GET /v1/feed\n");
}

TEST_F(HttpServerTest, StartFailsWhenThePortIsInUse) {
  Start(Echo);
  HttpServerOptions o;
  o.threads = 1;
  o.listen = "127.0.0.1:" + std::to_string(port());
  HttpServer second(o, Echo);
  const sl::Status s = second.start();
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().http, 500);
  EXPECT_EQ(s.error().code, "InternalError");
  EXPECT_NE(s.error().message.find("bind"), std::string::npos) << s.error().message;
  ExpectServing();
}

TEST_F(HttpServerTest, MalformedListenAddressIsRejected) {
  for (const char* listen : {"nonsense", "127.0.0.1:99999", "127.0.0.1:http", "[::1"}) {
    HttpServerOptions o;
    o.listen = listen;
    HttpServer s(o, Echo);
    const sl::Status st = s.start();
    ASSERT_FALSE(st.ok()) << listen;
    EXPECT_EQ(st.error().http, 400) << listen;
    EXPECT_EQ(st.error().code, "InvalidParameter") << listen;
  }
}

TEST_F(HttpServerTest, StartTwiceIsAnError) {
  Start(Echo);
  EXPECT_FALSE(server_->start().ok());
}

TEST_F(HttpServerTest, ManyConcurrentClientsAreAllServed) {
  options_.threads = 4;
  Start(Echo);
  std::atomic<int> ok{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 8; ++t) {
    clients.emplace_back([&, t] {
      TestClient c(port());
      for (int i = 0; i < 50; ++i) {
        const std::string target = "/c" + std::to_string(t) + "/" + std::to_string(i);
        if (c.Send(MakeRequest(http::verb::get, target))) return;
        Response res;
        if (c.Read(res)) return;
        if (res.body() == "GET " + target + "\n") ++ok;
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(ok.load(), 8 * 50);
}

TEST(HelloServer, AnswersHelloToEverythingWithKeepAlive) {
  sl::bench::HelloServer hello(2);
  ASSERT_TRUE(hello.start().ok());
  ASSERT_NE(hello.port(), 0);
  TestClient c(hello.port());
  for (const char* target : {"/", "/anything?x=1"}) {
    ASSERT_FALSE(c.Send(MakeRequest(http::verb::post, target, "body")));
    Response res;
    ASSERT_FALSE(c.Read(res));
    EXPECT_EQ(res.result(), http::status::ok);
    EXPECT_EQ(res.body(), "hello");
    EXPECT_EQ(res[http::field::content_type], "text/plain");
    EXPECT_TRUE(res.keep_alive());
  }
  hello.stop();
}

}  // namespace
}  // namespace sl::api
