// GatherSocket (the feed's socket below Beast's websocket stream): held writes
// stay in user space until released or kFlushBytes gather, every byte keeps
// its order, and a peer that stops reading still holds the writer back.
#include "api/gather_socket.h"

#include <optional>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <gtest/gtest.h>

#include "test_client.h"

namespace sl::api {
namespace {

namespace beast = boost::beast;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using namespace std::chrono_literals;
using testing::RunUntilDone;

class GatherSocketTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tcp::acceptor acceptor(ioc_, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
    tcp::socket server(ioc_);
    ASSERT_FALSE(RunUntilDone(ioc_, [&](auto h) { client_.async_connect(acceptor.local_endpoint(), h); }, 2s));
    ASSERT_FALSE(RunUntilDone(ioc_, [&](auto h) { acceptor.async_accept(server, h); }, 2s));
    gather_.emplace(std::move(server));
  }

  beast::error_code Write(const std::string& bytes) {
    return RunUntilDone(ioc_, [&](auto h) { net::async_write(*gather_, net::buffer(bytes), h); }, 2s);
  }

  // Whatever reaches the client within `wait`.
  std::string ReadFor(std::chrono::milliseconds wait) {
    std::string got;
    char chunk[64 << 10];
    for (;;) {
      std::size_t n = 0;
      auto ec = RunUntilDone(
          ioc_,
          [&](auto h) {
            client_.async_read_some(net::buffer(chunk), [&n, h](beast::error_code ec, std::size_t k) mutable {
              n = k;
              h(ec, k);
            });
          },
          wait);
      got.append(chunk, n);
      if (ec) return got;  // would_block: nothing more within `wait`
    }
  }

  net::io_context ioc_;
  tcp::socket client_{ioc_};
  std::optional<GatherSocket> gather_;
};

std::string Message(int i) { return "frame-" + std::to_string(i) + ";"; }

TEST_F(GatherSocketTest, HeldWritesReachThePeerOnlyOnceReleasedAndInOrder) {
  gather_->hold(true);
  std::string sent;
  for (int i = 0; i < 100; ++i) {
    ASSERT_FALSE(Write(Message(i))) << i;  // completes although nothing was sent
    sent += Message(i);
  }
  EXPECT_EQ(ReadFor(100ms), "");
  gather_->hold(false);
  EXPECT_EQ(ReadFor(200ms), sent);
}

TEST_F(GatherSocketTest, UnheldWritesGoOutAtOnce) {
  ASSERT_FALSE(Write(Message(1)));
  EXPECT_EQ(ReadFor(200ms), Message(1));
}

TEST_F(GatherSocketTest, AHeldBatchGoesOutOnceItFillsTheFlushSize) {
  gather_->hold(true);
  const std::string block(1024, 'x');
  std::size_t written = 0;
  while (written < GatherSocket::kFlushBytes) {
    ASSERT_FALSE(Write(block));
    written += block.size();
  }
  EXPECT_EQ(ReadFor(200ms).size(), written);
}

TEST_F(GatherSocketTest, APeerThatStopsReadingHoldsTheWriterBack) {
  gather_->next_layer().set_option(net::socket_base::send_buffer_size(4096));
  const std::string block(4096, 'y');
  std::string sent;
  beast::error_code ec;
  // The client's receive buffer and the server's small send buffer take a few
  // hundred KiB; user space adds at most kMaxBufferedBytes plus one write.
  constexpr std::size_t kLimit = 16 << 20;
  while (sent.size() < kLimit) {
    ec = Write(block);
    sent += block;
    if (ec) break;
  }
  ASSERT_EQ(ec, net::error::would_block) << "wrote " << sent.size() << " bytes without ever waiting";
  // The waiting write completes once the client reads, and every byte arrives in order.
  std::string got = ReadFor(500ms);
  EXPECT_EQ(got.size(), sent.size());
  EXPECT_TRUE(got == sent);
}

}  // namespace
}  // namespace sl::api
