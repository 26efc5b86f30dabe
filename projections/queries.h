// Read-side questions of SPEC §3.2, answered from projection rows.
//
// Every function takes a RowView, so the same code answers "now" and "as of
// seq N". Answers are scoped to a Viewer: the admin sees everything; an account
// sees its own images' grants, its own grants and its own instances. Objects a
// viewer may not see answer exactly like ids that do not exist (404 ...NotFound),
// so nothing leaks their existence.
// Thread safety: pure reads over the view.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "events/event.h"
#include "events/result.h"
#include "storage/row_view.h"
#include "storage/store.h"

namespace sl {

using Json = nlohmann::json;

struct Viewer {
  bool admin = false;
  std::string account_id;  // REQUIRES: set unless admin
};

// Row helpers: the row parsed as JSON, or nullopt when absent (or unparsable).
std::optional<Json> row_json(const RowView& view, const std::string& key);
// The image row when it exists and is not deleted.
std::optional<Json> live_image(const RowView& view, const std::string& image_id);

// Every grant on the image: [{account_id, source, since_seq, since_time}], plus
// the public grant. Owner/admin see all; a recipient sees only its own grants.
Result<Json> image_permissions(const RowView& view, const std::string& image_id, const Viewer& viewer);
// {direct, via_directory, public, effective}. Owner/admin only.
Result<Json> image_recipients(const RowView& view, const std::string& image_id, const Viewer& viewer);
// {allowed, sources[]}: can `account_id` see and launch the image? A non-admin may only ask about itself.
Result<Json> check_access(const RowView& view, const std::string& account_id, const std::string& image_id,
                          const Viewer& viewer);
// Accounts able to launch the image: {everyone, site, accounts:[{account_id, sources[]}]}. Owner/admin only.
Result<Json> image_launchers(const RowView& view, const std::string& image_id, const Viewer& viewer);
// Instance with reinit state. Owner/admin only.
Result<Json> instance_status(const RowView& view, const std::string& instance_id, const Viewer& viewer);
// Instances that would become reinit-blocked by deleting the image or unsharing
// it from `accounts` (a dry run). Owner/admin only.
Result<Json> image_impact(const RowView& view, const std::string& image_id, const std::string& action,
                          const std::vector<std::string>& accounts, const Viewer& viewer);
// Event envelopes touching an entity (image, account or instance) up to the view's seq.
// Image: owner/admin; account: itself/admin; instance: owner/admin.
Result<Json> entity_history(const Store& store, const RowView& view, const std::string& kind, const std::string& id,
                            const Viewer& viewer, std::size_t limit);

// Images `account_id` can use in `region`, each an image row plus "alias":
// self | system | marketplace | others.
std::vector<Json> usable_images(const RowView& view, const std::string& account_id, const std::string& region);

// Sources through which `account_id` may use the image row `image` (empty = none).
std::vector<std::string> access_sources(const RowView& view, const Json& image, const std::string& account_id);

// Feed and /v1/events scoping: may `account_id` see this event? Its own actions,
// events naming it (grants to it, its account) and events about images it owns,
// but never another account's instance events.
bool event_visible(const RowView& view, const Event& e, const std::string& account_id);

// What `account_id` may receive of a stored event: nothing (nullopt), the stored
// envelope (its own actions and events about its own images), or, for events it
// only appears in as a recipient, a copy that names no other account, instance
// or access key, marked "redacted": true (its hash then no longer verifies).
std::optional<std::string> envelope_for(const RowView& view, const Event& e, std::string_view stored,
                                        const std::string& account_id);

}  // namespace sl
