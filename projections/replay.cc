#include "projections/replay.h"

#include "events/codec.h"

namespace sl {

Status scan_verified(const Store& store, const ScanOptions& options,
                     const std::function<bool(const Event&, std::string_view)>& fn) {
  std::string prev_hash(kGenesisHash);
  std::uint64_t expected = 1;
  std::optional<Error> problem;
  auto fail = [&](std::uint64_t seq, const std::string& what) {
    problem = make_error(500, "CorruptEvent", "seq " + std::to_string(seq) + ": " + what);
    return false;
  };
  Event hash_only_event;
  auto scanned = store.scan_events(1, [&](std::uint64_t seq, std::string_view bytes) {
    if (seq > options.to_seq) return false;
    if (seq != expected) return fail(expected, "missing (next stored event is seq " + std::to_string(seq) + ")");
    auto hash = verify_event_bytes(bytes, prev_hash);
    if (!hash) return fail(seq, hash.error().message);
    bool go_on;
    if (options.hash_only) {
      hash_only_event.seq = seq;
      hash_only_event.hash = *hash;
      go_on = fn(hash_only_event, bytes);
    } else {
      auto e = decode_event(bytes);
      if (!e) return fail(seq, e.error().message);
      if (e->seq != seq) return fail(seq, "stored under key seq " + std::to_string(seq) + " but says " + std::to_string(e->seq));
      go_on = fn(*e, bytes);
    }
    prev_hash = std::move(*hash);
    if (options.progress && seq % options.progress_every == 0) options.progress(seq);
    ++expected;
    return go_on;
  });
  if (!scanned) return scanned;
  if (problem) return *problem;
  // A log whose last events were removed still chains; the recorded head tells.
  if (options.to_seq == std::numeric_limits<std::uint64_t>::max()) {
    auto recorded = store.recorded_head();
    if (!recorded) return recorded.error();
    if (*recorded >= expected) {
      return make_error(500, "CorruptEvent", "seq " + std::to_string(expected) + ": missing (the log was committed up to seq " +
                                                 std::to_string(*recorded) + ")");
    }
  }
  return Ok{};
}

Result<State> replay(const Store& store, const ScanOptions& options,
                     const std::function<void(const State&, const Event&)>& after_each) {
  State state;
  ScanOptions decode = options;
  decode.hash_only = false;
  auto status = scan_verified(store, decode, [&](const Event& e, std::string_view) {
    evolve(state, e);
    if (after_each) after_each(state, e);
    return true;
  });
  if (!status) return status.error();
  return state;
}

}  // namespace sl
