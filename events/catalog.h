// The built-in image catalog every region starts with (SPEC §1.1): system
// images for everyone and, per site, a free and a paid marketplace image.
// Ids are derived from region and name, so every ledger seeds the same ids.
// Thread safety: pure function.
#pragma once

#include <string>
#include <vector>

#include "events/commands.h"

namespace sl {

std::vector<SeedCatalogImage> builtin_catalog(const std::vector<std::string>& regions);

// "m-" + 20 lowercase alnum chars derived from `seed` (deterministic).
std::string derived_image_id(const std::string& seed);

}  // namespace sl
