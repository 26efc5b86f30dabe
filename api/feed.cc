#include "api/feed.h"

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <set>

#include "api/subscription.h"
#include "events/codec.h"
#include "events/entities.h"
#include "events/time_format.h"

namespace sl::api {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;

namespace {

std::shared_ptr<const std::string> frame_of(const Json& j) {
  return std::make_shared<const std::string>(j.dump(-1, ' ', false, Json::error_handler_t::replace));
}

constexpr std::string_view kFramePrefix = "{\"kind\":\"event\",\"event\":";

std::shared_ptr<const std::string> event_frame(std::string_view envelope) {
  std::string frame(kFramePrefix);
  frame.append(envelope);
  frame.push_back('}');
  return std::make_shared<const std::string>(std::move(frame));
}

std::shared_ptr<const FeedEvent> feed_event(Event e, std::string_view stored) {
  auto fe = std::make_shared<FeedEvent>();
  fe->frame = event_frame(stored);
  fe->event = std::move(e);
  return fe;
}

}  // namespace

class FeedSession : public std::enable_shared_from_this<FeedSession> {
 public:
  FeedSession(FeedHub& hub, beast::tcp_stream&& stream)
      : hub_(hub), ws_(std::move(stream)), heartbeat_timer_(ws_.get_executor()) {}

  ~FeedSession() { hub_.service().metrics().feed_subscribers--; }

  void run(Request&& req) {
    hub_.service().metrics().feed_subscribers++;
    call_.req = std::move(req);
    std::string_view target = call_.req.target();
    std::size_t q = target.find('?');
    auto params = parse_params(q == std::string_view::npos ? std::string_view() : target.substr(q + 1));
    if (params) {
      call_.params = std::move(*params);
      // Browsers cannot set headers on a WebSocket: the console sends the admin
      // token as ?access_token= (RFC 6750 §2.3); accounts sign the URL (v1).
      const std::string* token = call_.params.get("access_token");
      if (token && call_.req[http::field::authorization].empty()) {
        call_.req.set(http::field::authorization, "Bearer " + *token);
      }
      auth_ = hub_.service().authenticate_call(call_, true);
    } else {
      auth_ = params.error();
    }
    ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
    ws_.set_option(websocket::stream_base::decorator(
        [](websocket::response_type& res) { res.set(beast::http::field::server, "shareledger"); }));
    ws_.async_accept(call_.req, beast::bind_front_handler(&FeedSession::on_accept, shared_from_this()));
  }

  // From the hub: new events are available.
  void wake() {
    net::post(ws_.get_executor(), [self = shared_from_this()] {
      self->parked_ = false;
      self->pump();
    });
  }

 private:
  void on_accept(beast::error_code ec) {
    if (ec) return;
    if (!auth_) return fail_with(auth_.error().code, auth_.error().message);
    do_read();
    arm_heartbeat();
  }

  void do_read() {
    ws_.async_read(in_, beast::bind_front_handler(&FeedSession::on_read, shared_from_this()));
  }

  void on_read(beast::error_code ec, std::size_t) {
    if (ec) return close_quietly();
    std::string text = beast::buffers_to_string(in_.data());
    in_.consume(in_.size());
    if (subscribed_) return fail_with("InvalidSubscribe", "already subscribed on this connection");
    if (auto s = subscribe(text); !s) return fail_with(s.error().code, s.error().message);
    do_read();
    pump();
  }

  Status subscribe(const std::string& text) {
    auto sub = parse_subscription(text, hub_.service().ledger().head().seq);
    if (!sub) return sub.error();
    filter_ = std::move(sub->filter);
    next_ = sub->next_seq;
    subscribed_ = true;
    if (sub->snapshot) {
      auto view = hub_.service().ledger().view(next_ - 1);
      if (!view) return view.error();
      enqueue(frame_of(Json{{"kind", "snapshot"}, {"seq", next_ - 1}, {"state", snapshot(**view)}}));
    }
    return Ok{};
  }

  // The filtered projections as of the view: images asked for (or owned), accounts asked for (or self).
  Json snapshot(const RowView& view) {
    Viewer viewer{call_.admin, call_.caller};
    Json images = Json::object(), accounts = Json::object();
    std::set<std::string> image_ids = filter_.image_ids, account_ids = filter_.account_ids;
    if (!call_.admin && image_ids.empty() && account_ids.empty()) {
      account_ids.insert(call_.caller);
      view.scan("own/" + call_.caller + "/", [&](std::string_view key, std::string_view) {
        image_ids.insert(std::string(key.substr(key.rfind('/') + 1)));
        return true;
      });
    }
    for (const auto& id : image_ids) {
      auto permissions = image_permissions(view, id, viewer);
      if (!permissions) continue;
      Json entry{{"permissions", *permissions}};
      if (auto recipients = image_recipients(view, id, viewer)) entry["recipients"] = *recipients;
      images[id] = entry;
    }
    for (const auto& id : account_ids) {
      if (!call_.admin && id != call_.caller) continue;
      Json grants = Json::array(), instances = Json::array();
      view.scan("agrant/" + id + "/", [&](std::string_view, std::string_view value) {
        grants.push_back(Json::parse(value));
        return true;
      });
      std::string prefix = "oinst/" + id + "/";
      view.scan(prefix, [&](std::string_view key, std::string_view) {
        if (auto i = instance_status(view, std::string(key.substr(prefix.size())), viewer)) instances.push_back(*i);
        return true;
      });
      accounts[id] = Json{{"grants", grants}, {"instances", instances}};
    }
    return Json{{"images", images}, {"accounts", accounts}};
  }

  // Fills the send queue from the ring or RocksDB, or parks at the tail.
  void pump() {
    if (!subscribed_ || closing_ || closing_after_write_ || writing_ || parked_) return;
    while (queue_.empty()) {
      // Ownership checks (offer) need a view no older than the events read below:
      // an older one lacks images created since and hides events about them.
      rows_.reset();
      std::uint64_t head = hub_.head();
      if (next_ > head) {
        // RocksDB may already hold events the hub has not published yet.
        if (!read_store(1)) return;
        if (!queue_.empty() || next_ <= hub_.head()) continue;
        if (!live_) {
          live_ = true;
          enqueue(frame_of(Json{{"kind", "live"}, {"head", next_ - 1}}));
          break;
        }
        if (hub_.park(shared_from_this(), next_)) {
          parked_ = true;
          rows_.reset();  // do not pin a RocksDB snapshot while parked
          return;
        }
        continue;
      }
      std::vector<std::shared_ptr<const FeedEvent>> batch;
      if (head - next_ < kLiveWindow && hub_.read_ring(next_, kMaxFramesInFlight, batch)) {
        for (const auto& fe : batch) offer(fe->event, fe->frame);
      } else {
        live_ = false;  // behind the window: serve from disk, say "live" again on return
        if (!read_store(kCatchUpChunk)) return;
      }
    }
    write_front();
  }

  // Reads up to `max` events from RocksDB starting at next_. False on a storage error (closes).
  bool read_store(std::size_t max) {
    std::size_t seen = 0;
    auto status = hub_.service().ledger().store().scan_events(next_, [&](std::uint64_t seq, std::string_view bytes) {
      if (seq != next_) return false;  // never skip a seq
      auto e = decode_event(bytes);
      if (!e) return false;
      offer(*e, event_frame(bytes));
      return ++seen < max;
    });
    if (!status) {
      fail_with(status.error().code, status.error().message);
      return false;
    }
    return true;
  }

  // Checks one event (in seq order) against scope and filter; queues it when it passes.
  void offer(const Event& e, std::shared_ptr<const std::string> frame) {
    if (e.seq != next_) return;  // already delivered (a publish racing a disk read)
    next_ = e.seq + 1;
    auto entities = touched_entities(e);
    if (!filter_.matches(e, entities)) return;
    if (!call_.admin) {
      if (!rows_) rows_ = std::move(*hub_.service().ledger().view());
      // The envelope is inside the frame: {"kind":"event","event":<envelope>}.
      std::string_view stored(*frame);
      stored = stored.substr(kFramePrefix.size(), stored.size() - kFramePrefix.size() - 1);
      auto scoped = envelope_for(*rows_, e, stored, call_.caller);
      if (!scoped) return;
      if (scoped->size() != stored.size() || *scoped != stored) frame = event_frame(*scoped);
    }
    enqueue(std::move(frame));
  }

  void enqueue(std::shared_ptr<const std::string> frame) { queue_.push_back(std::move(frame)); }

  void write_front() {
    if (queue_.empty() || writing_ || closing_) return;
    writing_ = true;
    rows_.reset();  // a fresh view for the next batch's ownership checks
    ws_.text(true);
    ws_.async_write(net::buffer(*queue_.front()), beast::bind_front_handler(&FeedSession::on_write, shared_from_this()));
  }

  void on_write(beast::error_code ec, std::size_t) {
    writing_ = false;
    if (ec) return close_quietly();
    queue_.pop_front();
    last_traffic_ = std::chrono::steady_clock::now();
    if (closing_after_write_ && queue_.empty()) return close_now(websocket::close_code::policy_error);
    if (!queue_.empty()) return write_front();
    pump();
  }

  void arm_heartbeat() {
    heartbeat_timer_.expires_after(hub_.heartbeat());
    heartbeat_timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (ec || self->closing_) return;
      auto idle = std::chrono::steady_clock::now() - self->last_traffic_;
      if (self->subscribed_ && !self->writing_ && self->queue_.empty() && idle >= self->hub_.heartbeat()) {
        self->enqueue(frame_of(Json{{"kind", "heartbeat"}, {"position", self->next_ - 1},
                                    {"time", rfc3339_micros(now_micros())}}));
        self->write_front();
      }
      self->arm_heartbeat();
    });
  }

  // Error frame, then close (1008 policy error). A frame already being written
  // stays at the front until its on_write pops it (one write at a time on a
  // websocket stream, and its buffer must live until then); the rest is dropped.
  void fail_with(const std::string& code, const std::string& message) {
    if (closing_after_write_) return;
    queue_.erase(writing_ ? std::next(queue_.begin()) : queue_.begin(), queue_.end());
    closing_after_write_ = true;
    enqueue(frame_of(Json{{"kind", "error"}, {"code", code}, {"message", message}}));
    write_front();  // no-op while a write is in flight: on_write continues with the error frame
  }

  void close_now(websocket::close_code code) {
    closing_ = true;
    heartbeat_timer_.cancel();
    ws_.async_close(code, [self = shared_from_this()](beast::error_code) {});
  }

  void close_quietly() {
    closing_ = true;
    heartbeat_timer_.cancel();
  }

  FeedHub& hub_;
  websocket::stream<beast::tcp_stream> ws_;
  beast::flat_buffer in_;
  Call call_;
  Status auth_ = Ok{};
  FeedFilter filter_;
  std::uint64_t next_ = 1;
  bool subscribed_ = false, live_ = false, parked_ = false, writing_ = false;
  bool closing_ = false, closing_after_write_ = false;
  std::deque<std::shared_ptr<const std::string>> queue_;
  std::unique_ptr<RowView> rows_;
  net::steady_timer heartbeat_timer_;
  std::chrono::steady_clock::time_point last_traffic_ = std::chrono::steady_clock::now();
};

FeedHub::FeedHub(Service& service, boost::asio::io_context& io, std::chrono::milliseconds heartbeat)
    : service_(service), io_(io), heartbeat_(heartbeat) {
  head_ = service.ledger().head().seq;
}

void FeedHub::publish(const std::vector<Event>& events) {
  if (events.empty()) return;
  // The writer only hands the batch over; framing and wake-ups run on an io thread.
  // Batches must enter the ring in seq order, but with several io threads two
  // posted batches can run in either order. One that finds its predecessor not
  // yet applied waits for it (it was posted first, so it is queued or running).
  // head_ never moves backwards: a session parked past a head_ that later moved
  // back would miss its wake-up, and a ring restarted by an out-of-order batch
  // sends live sessions back to RocksDB.
  struct Apply {
    FeedHub* hub;
    std::shared_ptr<const std::vector<Event>> events;
    std::chrono::steady_clock::time_point give_up;  // a real gap (events never published) must not stall the feed

    void operator()() const {
      std::vector<std::shared_ptr<FeedSession>> wake;
      {
        std::lock_guard lock(hub->mu_);
        if (events->front().seq > hub->head_ + 1 && std::chrono::steady_clock::now() < give_up) {
          // Its predecessor is queued or on another io thread: retry shortly (no spinning).
          auto timer = std::make_shared<net::steady_timer>(hub->io_, std::chrono::microseconds(50));
          timer->async_wait([timer, again = *this](beast::error_code ec) {
            if (!ec) again();
          });
          return;
        }
        for (const Event& e : *events) {
          if (e.seq <= hub->head_) continue;  // already published
          if (e.seq != hub->head_ + 1) hub->ring_.clear();  // a gap: restart the ring (sessions read it from RocksDB)
          hub->ring_.push_back(feed_event(e, encode_event(e)));
          hub->head_ = e.seq;
          if (hub->ring_.size() > kRingCapacity) hub->ring_.pop_front();
        }
        for (auto& weak : hub->parked_) {
          if (auto s = weak.lock()) wake.push_back(std::move(s));
        }
        hub->parked_.clear();
      }
      for (auto& s : wake) s->wake();
      hub->service_.metrics().feed_lag_events = 0;
    }
  };
  net::post(io_, Apply{this, std::make_shared<const std::vector<Event>>(events),
                       std::chrono::steady_clock::now() + std::chrono::seconds(1)});
}

void FeedHub::accept(boost::beast::tcp_stream&& stream, Request&& req) {
  std::make_shared<FeedSession>(*this, std::move(stream))->run(std::move(req));
}

bool FeedHub::read_ring(std::uint64_t from, std::size_t max, std::vector<std::shared_ptr<const FeedEvent>>& out) const {
  std::lock_guard lock(mu_);
  if (ring_.empty() || from < ring_.front()->event.seq || from > head_) return false;
  std::size_t at = from - ring_.front()->event.seq;
  for (std::size_t i = at; i < ring_.size() && out.size() < max; ++i) out.push_back(ring_[i]);
  return true;
}

std::uint64_t FeedHub::head() const {
  std::lock_guard lock(mu_);
  return head_;
}

bool FeedHub::park(const std::shared_ptr<FeedSession>& session, std::uint64_t next) {
  std::lock_guard lock(mu_);
  if (next <= head_) return false;
  parked_.push_back(session);
  return true;
}

}  // namespace sl::api
