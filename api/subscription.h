// The feed's subscribe frame (SPEC §3.3), parsed and validated apart from any
// socket so it can be unit-tested and fuzzed:
//   {"op":"subscribe","after_seq":N,"snapshot":true,
//    "filter":{"image_ids":[...],"account_ids":[...],"types":[...]}}
// Thread safety: pure functions and values.
#pragma once

#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "events/event.h"
#include "events/result.h"

namespace sl::api {

struct FeedFilter {
  std::set<std::string> image_ids, account_ids, types;

  // True when the event passes every non-empty list (`entities` = touched_entities(e)).
  bool matches(const Event& e, const std::vector<std::string>& entities) const;
  // True when every list is empty: every event matches (no entities needed).
  bool unfiltered() const { return image_ids.empty() && account_ids.empty() && types.empty(); }
};

struct Subscription {
  FeedFilter filter;
  std::uint64_t next_seq = 1;  // first seq to deliver
  bool snapshot = false;
};

// OK: the subscription (after_seq omitted -> live from head_seq + 1).
// 400 InvalidSubscribe: not a JSON object, op is not "subscribe", filter not an
// object of string arrays, after_seq not a non-negative integer.
// 400 InvalidParameter.AsOf: after_seq beyond head_seq.
Result<Subscription> parse_subscription(std::string_view frame, std::uint64_t head_seq);

}  // namespace sl::api
