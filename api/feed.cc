#include "api/feed.h"

#include <pthread.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <charconv>
#include <iostream>
#include <set>

#include "api/gather_socket.h"
#include "api/subscription.h"
#include "events/codec.h"
#include "events/entities.h"
#include "events/time_format.h"

namespace sl::api {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;

namespace {

// One structured log line: ts=... level=... msg=... key=value...
void log_line(const char* level, const char* msg, const std::string& fields) {
  std::cerr << "ts=" << rfc3339_micros(now_micros()) << " level=" << level << " msg=\"" << msg << "\" " << fields
            << std::endl;
}

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

// Feed threads yield the CPU to writers: a delivery should never take a core
// from an append. Lowering one's own priority needs no privilege.
void lower_this_thread(const FeedOptions& options) {
  pthread_setname_np(pthread_self(), "sl-feed");
  sched_param param{};
  if (options.idle && pthread_setschedparam(pthread_self(), SCHED_IDLE, &param) == 0) return;
  const int nice = options.idle ? 19 : options.nice;
  if (nice > 0 && setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), nice) != 0) {
    log_line("warn", "cannot lower feed thread priority", "nice=" + std::to_string(nice) + " errno=" + std::to_string(errno));
  }
}

}  // namespace

class FeedSession : public std::enable_shared_from_this<FeedSession> {
 public:
  FeedSession(FeedHub& hub, tcp::socket&& socket)
      : hub_(hub), ws_(std::move(socket)), heartbeat_timer_(ws_.get_executor()) {
    hub_.service().metrics().feed_subscribers++;
  }

  ~FeedSession() { hub_.service().metrics().feed_subscribers--; }

  // On the session's strand.
  void run(Request&& req) {
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
    // A live frame goes out at once (Nagle would hold it for the previous
    // frame's delayed ACK, up to 40 ms); batches are gathered by gather().
    beast::error_code ignored;
    ws_.next_layer().next_layer().set_option(tcp::no_delay(true), ignored);
    ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
    ws_.set_option(websocket::stream_base::decorator(
        [](websocket::response_type& res) { res.set(beast::http::field::server, "shareledger"); }));
    ws_.async_accept(call_.req, beast::bind_front_handler(&FeedSession::on_accept, shared_from_this()));
  }

  // The session's strand.
  net::any_io_executor executor() { return ws_.get_executor(); }

  // From the hub: the ring grew.
  void wake() {
    net::post(ws_.get_executor(), [self = shared_from_this()] {
      self->parked_ = false;
      self->pump();
    });
  }

  // For the hub's gauges (any feed thread): nullopt before the subscribe frame.
  std::optional<std::uint64_t> position() const {
    std::uint64_t p = position_.load(std::memory_order_relaxed);
    if (p == kNoPosition) return std::nullopt;
    return p;
  }
  bool demoted() const { return demoted_.load(std::memory_order_relaxed); }

 private:
  static constexpr std::uint64_t kNoPosition = ~0ull;

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
    position_.store(next_ - 1, std::memory_order_relaxed);
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

  // Fills the send queue from the ring or RocksDB, or parks at the tail. Runs
  // only when the previous frames are written, so a slow socket holds at most
  // kMaxFramesInFlight frames and simply falls behind (then catches up).
  void pump() {
    if (!subscribed_ || closing_ || closing_after_write_ || writing_ || parked_ || pump_posted_) return;
    std::uint64_t checked = 0;
    while (queue_.empty()) {
      // Ownership checks (offer) need a view no older than the events read below:
      // an older one lacks images created since and hides events about them.
      rows_.reset();
      const std::uint64_t head = hub_.head();
      if (next_ > head) {
        if (!live_) {
          live_ = true;
          demoted_.store(false, std::memory_order_relaxed);
          enqueue(frame_of(Json{{"kind", "live"}, {"head", next_ - 1}}));
          break;
        }
        if (hub_.park(shared_from_this(), next_)) {
          parked_ = true;
          return;
        }
        continue;
      }
      if (checked >= kCheckedPerTurn) {
        // A filter that matches little would otherwise walk a long backlog in
        // one go: let the other sessions, and this one's heartbeat, run.
        pump_posted_ = true;
        net::post(ws_.get_executor(), [self = shared_from_this()] {
          self->pump_posted_ = false;
          self->pump();
        });
        return;
      }
      if (live_ && head - next_ >= kLiveWindow) {
        live_ = false;  // demoted: say "live" again on reaching the head
        demoted_.store(true, std::memory_order_relaxed);
        hub_.service().metrics().feed_demotions_total++;
      }
      if (!live_ && hub_.hold_catch_up(shared_from_this())) {
        parked_ = true;  // woken by the hub, like a session parked at the tail
        return;
      }
      const std::uint64_t before = next_;
      batch_.clear();
      if (hub_.read_ring(next_, kMaxFramesInFlight, batch_)) {
        for (const auto& fe : batch_) offer(fe->event, &fe->entities, fe->frame);
        batch_.clear();
      } else if (!read_store(kCatchUpChunk)) {
        return;
      }
      checked += next_ - before;
      position_.store(next_ - 1, std::memory_order_relaxed);
    }
    write_front();
  }

  // Reads up to `max` events from RocksDB starting at next_. False on a storage error (closes).
  bool read_store(std::size_t max) {
    std::size_t seen = 0;
    Status decoded = Ok{};
    auto status = hub_.service().ledger().store().scan_events(next_, [&](std::uint64_t seq, std::string_view bytes) {
      if (seq != next_) return false;  // never skip a seq
      auto e = decode_event(bytes);
      if (!e) {
        decoded = e.error();
        return false;
      }
      offer(*e, nullptr, event_frame(bytes));
      return ++seen < max;
    });
    if (!status || !decoded) {
      const Error& err = !status ? status.error() : decoded.error();
      fail_with(err.code, err.message);
      return false;
    }
    return true;
  }

  // Checks one event (in seq order) against scope and filter; queues it when it
  // passes. `entities` = touched_entities(e) when the caller has it, else null.
  void offer(const Event& e, const std::vector<std::string>* entities, std::shared_ptr<const std::string> frame) {
    if (e.seq != next_) return;
    next_ = e.seq + 1;
    if (!filter_.unfiltered()) {
      std::vector<std::string> computed;
      if (!entities) computed = touched_entities(e);
      if (!filter_.matches(e, entities ? *entities : computed)) return;
    }
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
    if (queue_.size() > 1) gather(true);
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
    if (!writing_) gather(false);  // nothing more to send now: out with what is gathered
  }

  // A subscriber with several frames queued (catching up, or a group commit of
  // many events) gets them in a few large writes instead of one syscall and
  // one loopback packet, receive-side softirq and reader wake-up per frame
  // (the bulk of a delivery's CPU, docs/PERFORMANCE.md).
  void gather(bool on) { ws_.next_layer().hold(on); }

  // A heartbeat goes out one heartbeat period after the last frame written,
  // whatever the traffic before: the timer is re-armed from that frame, not
  // on a fixed beat (which spaced heartbeats up to two periods apart).
  void arm_heartbeat() {
    const auto now = std::chrono::steady_clock::now();
    auto due = last_traffic_ + hub_.heartbeat();
    if (due <= now) {
      if (subscribed_ && !writing_ && queue_.empty()) {
        enqueue(frame_of(Json{{"kind", "heartbeat"}, {"position", next_ - 1}, {"time", rfc3339_micros(now_micros())}}));
        write_front();
      }
      // Written or busy writing: the next one is due a period after that write
      // completes; re-check then rather than spin on a timer in the past.
      due = now + hub_.heartbeat();
    }
    heartbeat_timer_.expires_at(due);
    heartbeat_timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (ec || self->closing_) return;
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
    gather(false);  // the close frame must go out, or the peer never answers it
    heartbeat_timer_.cancel();
    ws_.async_close(code, [self = shared_from_this()](beast::error_code) {});
  }

  void close_quietly() {
    closing_ = true;
    heartbeat_timer_.cancel();
  }

  FeedHub& hub_;
  websocket::stream<GatherSocket> ws_;
  beast::flat_buffer in_;
  Call call_;
  Status auth_ = Ok{};
  FeedFilter filter_;
  std::uint64_t next_ = 1;
  bool subscribed_ = false, live_ = false, parked_ = false, writing_ = false, pump_posted_ = false;
  bool closing_ = false, closing_after_write_ = false;
  std::deque<std::shared_ptr<const std::string>> queue_;
  std::vector<std::shared_ptr<const FeedEvent>> batch_;  // reused by pump()
  std::unique_ptr<RowView> rows_;
  net::steady_timer heartbeat_timer_;
  std::chrono::steady_clock::time_point last_traffic_ = std::chrono::steady_clock::now();
  std::atomic<std::uint64_t> position_{kNoPosition};  // next_ - 1 once subscribed, for the gauges
  std::atomic<bool> demoted_{false};                  // behind the live window since it was live
};

Status parse_feed_priority(std::string_view text, FeedOptions& options) {
  if (text == "idle") {
    options.idle = true;
    return Ok{};
  }
  int nice = -1;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), nice);
  if (ec != std::errc() || end != text.data() + text.size() || nice < 0 || nice > 19) {
    return make_error(400, "InvalidParameter", "feed priority must be idle or a nice value 0..19");
  }
  options.idle = false;
  options.nice = nice;
  return Ok{};
}

FeedHub::FeedHub(Service& service, FeedOptions options) : service_(service), options_(options) {
  const std::uint64_t head = service.ledger().head().seq;
  committed_ = head;
  head_ = head;
  min_position_ = head;
  io_.emplace(options_.threads);
  strand_.emplace(net::make_strand(*io_));
  metrics_timer_.emplace(*strand_);
  release_timer_.emplace(*strand_);
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ >= 0) {
    wake_.emplace(*strand_, wake_fd_);  // owns and closes the fd
    wait_for_commits();
  } else {
    log_line("warn", "feed eventfd unavailable; posting wake-ups", "errno=" + std::to_string(errno));
  }
  arm_metrics();
  for (int i = 0; i < std::max(1, options_.threads); ++i) {
    threads_.emplace_back([this] {
      lower_this_thread(options_);
      io_->run();
    });
  }
}

FeedHub::~FeedHub() {
  stop();
  // Before the io_context: these hold operations registered with it, and the
  // strand's implementation belongs to one of its services (UBSan saw ~strand
  // run after them). Then the io_context destroys the sessions its abandoned
  // handlers still own.
  metrics_timer_.reset();
  release_timer_.reset();
  wake_.reset();
  strand_.reset();
  io_.reset();
}

void FeedHub::attach(Ledger& ledger) {
  ledger_ = &ledger;
  // A group whose hook call ran before this one is set (the last catalog group
  // of Ledger::open, say) is already in head(), announced below.
  ledger.set_on_committed([this](const std::vector<Event>& events) { on_committed(events.back().seq); });
  // Events committed between this hub's construction and the hook: announced
  // here; the ring reads them from RocksDB like every other event.
  on_committed(ledger.head().seq);
}

void FeedHub::detach() {
  if (ledger_) ledger_->set_on_committed(nullptr);
  ledger_ = nullptr;
}

void FeedHub::stop() {
  if (stopped_) return;
  stopped_ = true;
  io_->stop();
  for (auto& t : threads_) t.join();
  threads_.clear();
}

void FeedHub::on_committed(std::uint64_t seq) {
  std::uint64_t prev = committed_.load(std::memory_order_relaxed);
  while (prev < seq && !committed_.compare_exchange_weak(prev, seq, std::memory_order_release)) {
  }
  publish_lag(seq);
  if (wake_pending_.exchange(true, std::memory_order_acq_rel)) return;  // the hub has not run since the last one
  if (wake_fd_ >= 0) {
    const std::uint64_t one = 1;
    if (::write(wake_fd_, &one, sizeof one) == static_cast<ssize_t>(sizeof one)) return;
  }
  net::post(*strand_, [this] { refill(); });
}

// A read op, not async_wait + read(2): asio's epoll reactor is edge-triggered
// and never tries a wait before queueing it. With several feed threads, an
// edge from a commit made while refill() runs can be taken by another thread's
// epoll_wait before the wait is queued again; it would be lost, and with
// wake_pending_ left set no later commit writes again: the feed would stall
// for good. A read op first tries the descriptor, so such a count is seen.
void FeedHub::wait_for_commits() {
  wake_->async_read_some(net::buffer(&wake_count_, sizeof wake_count_), [this](beast::error_code ec, std::size_t) {
    if (ec == net::error::operation_aborted) return;
    if (ec) {
      log_line("error", "feed eventfd read failed", "error=" + ec.message());
      return;
    }
    refill();
    wait_for_commits();
  });
}

// On strand_: appends the events the writer announced, from RocksDB, at most
// kCatchUpChunk per turn (then yields), and wakes the parked sessions.
void FeedHub::refill() {
  // Cleared before reading committed_: a commit after this load writes the eventfd again.
  wake_pending_.store(false, std::memory_order_seq_cst);
  const std::uint64_t target = committed_.load(std::memory_order_seq_cst);
  const std::uint64_t from = head_.load(std::memory_order_relaxed) + 1;
  if (from > target) return;
  std::vector<std::shared_ptr<const FeedEvent>> fresh;
  Status decoded = Ok{};
  Status scanned = service_.ledger().store().scan_events(from, [&](std::uint64_t seq, std::string_view bytes) {
    if (seq > target || seq != from + fresh.size()) return false;
    auto e = decode_event(bytes);
    if (!e) {
      decoded = e.error();
      return false;
    }
    auto fe = std::make_shared<FeedEvent>();
    fe->frame = event_frame(bytes);
    fe->entities = touched_entities(*e);
    fe->event = std::move(*e);
    fresh.push_back(std::move(fe));
    return fresh.size() < kCatchUpChunk;
  });
  std::vector<std::shared_ptr<FeedSession>> wake;
  if (!fresh.empty()) {
    last_commit_ns_.store(std::chrono::steady_clock::now().time_since_epoch().count(), std::memory_order_relaxed);
    std::lock_guard lock(mu_);
    for (auto& fe : fresh) ring_.push_back(std::move(fe));
    while (ring_.size() > kRingCapacity) ring_.pop_front();
    head_.store(ring_.back()->event.seq, std::memory_order_release);
    for (auto& weak : parked_) {
      if (auto s = weak.lock()) wake.push_back(std::move(s));
    }
    parked_.clear();
  }
  for (auto& s : wake) s->wake();
  if (!scanned || !decoded) {
    // Sessions stop at the last good seq (they read the same bytes); the next
    // commit retries. Nothing is skipped.
    const Error& err = !scanned ? scanned.error() : decoded.error();
    log_line("error", "feed cannot read the log", "seq=" + std::to_string(from + fresh.size()) + " code=" + err.code);
    return;
  }
  if (head_.load(std::memory_order_relaxed) < target) net::post(*strand_, [this] { refill(); });
}

void FeedHub::arm_metrics() {
  metrics_timer_->expires_after(options_.metrics_period);
  metrics_timer_->async_wait([this](beast::error_code ec) {
    if (ec) return;
    sample_metrics();
    arm_metrics();
  });
}

// On strand_: the lowest subscriber position and the demoted count. The
// writer's on_committed turns them into the lag gauges at every commit, so the
// gauges stay current even while feed threads are starved of CPU.
void FeedHub::sample_metrics() {
  std::uint64_t min = ~0ull, sum = 0, n = 0;
  std::int64_t demoted = 0;
  const std::uint64_t head = committed_.load(std::memory_order_relaxed);
  {
    std::lock_guard lock(mu_);
    std::erase_if(sessions_, [](const std::weak_ptr<FeedSession>& w) { return w.expired(); });
    for (const auto& weak : sessions_) {
      auto s = weak.lock();
      if (!s) continue;
      auto p = s->position();
      if (!p) continue;
      min = std::min(min, *p);
      sum += *p;
      n++;
      // A session stuck on a full socket cannot notice its own demotion: it
      // counts as soon as it is more than the live window behind.
      demoted += s->demoted() || head > *p + kLiveWindow ? 1 : 0;
    }
  }
  positioned_.store(n, std::memory_order_relaxed);
  positions_sum_.store(sum, std::memory_order_relaxed);
  min_position_.store(n ? min : 0, std::memory_order_relaxed);
  service_.metrics().feed_demoted_subscribers = demoted;
  publish_lag(head);
}

void FeedHub::publish_lag(std::uint64_t committed) {
  const std::uint64_t n = positioned_.load(std::memory_order_relaxed);
  const std::uint64_t min = min_position_.load(std::memory_order_relaxed);
  const std::uint64_t sum = positions_sum_.load(std::memory_order_relaxed);
  auto& m = service_.metrics();
  m.feed_lag_events = static_cast<std::int64_t>(n && committed > min ? committed - min : 0);
  m.feed_lag_events_sum = static_cast<std::int64_t>(n && committed * n > sum ? committed * n - sum : 0);
}

void FeedHub::accept(beast::tcp_stream&& stream, Request&& req) {
  // Move the connection to a feed thread: release the descriptor from the HTTP
  // io_context and adopt it in ours, before any websocket state exists.
  beast::error_code ec;
  tcp::socket& from = stream.socket();
  const tcp::endpoint local = from.local_endpoint(ec);
  if (ec) return;
  const tcp::socket::native_handle_type fd = from.release(ec);
  if (ec) return;
  tcp::socket socket(net::make_strand(*io_));
  if (socket.assign(local.protocol(), fd, ec); ec) {
    ::close(fd);
    return;
  }
  auto session = std::make_shared<FeedSession>(*this, std::move(socket));
  {
    std::lock_guard lock(mu_);
    sessions_.push_back(session);
  }
  net::post(session->executor(), [session, req = std::move(req)]() mutable { session->run(std::move(req)); });
}

bool FeedHub::read_ring(std::uint64_t from, std::size_t max, std::vector<std::shared_ptr<const FeedEvent>>& out) const {
  std::lock_guard lock(mu_);
  if (ring_.empty() || from < ring_.front()->event.seq || from > ring_.back()->event.seq) return false;
  const std::size_t at = from - ring_.front()->event.seq;
  const std::size_t end = std::min(ring_.size(), at + max);
  out.insert(out.end(), ring_.begin() + static_cast<std::ptrdiff_t>(at), ring_.begin() + static_cast<std::ptrdiff_t>(end));
  return true;
}

bool FeedHub::park(const std::shared_ptr<FeedSession>& session, std::uint64_t next) {
  std::lock_guard lock(mu_);
  if (next <= head_.load(std::memory_order_relaxed)) return false;
  parked_.push_back(session);
  return true;
}

// Catching up may run when the writers rest, and otherwise in the first
// catch_up_share of every catch_up_period (the same clock phase for every
// session, so they take their turns together and leave the writers the rest).
bool FeedHub::catch_up_open(std::chrono::steady_clock::time_point now) const {
  if (options_.catch_up_share >= 1.0) return true;
  const std::chrono::nanoseconds since_commit(now.time_since_epoch().count() -
                                              last_commit_ns_.load(std::memory_order_relaxed));
  if (since_commit >= options_.writers_rest_after) return true;
  const auto period = std::chrono::duration_cast<std::chrono::nanoseconds>(options_.catch_up_period);
  return now.time_since_epoch() % period < period * options_.catch_up_share;
}

bool FeedHub::hold_catch_up(const std::shared_ptr<FeedSession>& session) {
  const auto now = std::chrono::steady_clock::now();
  if (catch_up_open(now)) return false;
  std::lock_guard lock(mu_);
  held_.push_back(session);
  if (!release_armed_) {
    release_armed_ = true;
    // The next turn, or the writers' rest if that comes first (or there are no turns).
    const auto rested = std::chrono::steady_clock::time_point(std::chrono::nanoseconds(
                            last_commit_ns_.load(std::memory_order_relaxed))) + options_.writers_rest_after;
    auto at = rested;
    if (options_.catch_up_share > 0) {
      const auto period = std::chrono::duration_cast<std::chrono::nanoseconds>(options_.catch_up_period);
      at = std::min(at, now - now.time_since_epoch() % period + period);
    }
    net::post(*strand_, [this, at] {
      release_timer_->expires_at(at);
      release_timer_->async_wait([this](beast::error_code ec) {
        if (!ec) release_held();
      });
    });
  }
  return true;
}

// On strand_: wakes the held sessions (each checks the clock again first).
void FeedHub::release_held() {
  std::vector<std::shared_ptr<FeedSession>> wake;
  {
    std::lock_guard lock(mu_);
    for (auto& weak : held_) {
      if (auto s = weak.lock()) wake.push_back(std::move(s));
    }
    held_.clear();
    release_armed_ = false;
  }
  for (auto& s : wake) s->wake();
}

}  // namespace sl::api
