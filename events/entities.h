// Which entities an event is about, for the history index and feed scoping.
// Thread safety: pure function.
#pragma once

#include <string>
#include <vector>

#include "events/event.h"

namespace sl {

// Every id the event names (images, instances, disks, accounts, directories,
// folders, shares, handshakes), plus the acting account. Sorted, unique, no "".
std::vector<std::string> touched_entities(const Event& e);

}  // namespace sl
