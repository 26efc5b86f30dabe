// decide(): the rules. Command + State -> the events to append, or an Error.
//
// Pure: no I/O, no clock, no randomness. The returned events carry their data
// and region only; storage assigns seq, time, actor, request id and hashes.
// Checks run in the order SPEC.md §1.3 gives; the first failing one decides the
// error, and an error means nothing is appended. An empty vector means the
// command is valid but changes nothing (a no-op, acknowledged with the head seq).
// Thread safety: reads `state` only.
#pragma once

#include <vector>

#include "events/commands.h"
#include "events/result.h"
#include "events/state.h"

namespace sl {

// Per-call limits of SPEC §1.3.
inline constexpr std::size_t kMaxAccountsPerCall = 10;
inline constexpr int kMaxAccountRecipients = 50;
inline constexpr std::size_t kMaxShareItemsPerCall = 5;

Result<std::vector<Event>> decide(const State& state, const Command& command, const Limits& limits);

}  // namespace sl
