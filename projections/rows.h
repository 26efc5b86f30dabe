// Projection rows: the read model, derived from State and stored in RocksDB.
//
// Row keys (ids never contain '/' or '\0'):
//   acct/<account>               account: site, encrypt_role, folder, directory
//   akey/<access key>            -> account id
//   img/<image>                  image (kept after deletion with status Deleted)
//   own/<owner>/<image>          live custom images by owner            (value "")
//   cat/<region>/<image>         built-in system and marketplace images (value "")
//   pub/<image>                  public images                          (value "")
//   recip/<image>                recipient counts {direct, via_directory, public, effective}
//   grant/<image>/<account>      {"sources":{source:{seq,time}}}  (absent = no grant)
//   agrant/<account>/<image>     the same, keyed by recipient
//   inst/<instance>              instance with reinit_blocked/reason/since
//   oinst/<owner>/<instance>     instances by owner                     (value "")
//   iimg/<image>/<instance>      instances whose current image it is    (value "")
//   disk/<disk>                  -> instance id
//   dir/<directory>  folder/<folder>  hs/<handshake>  share/<share>  oshare/<owner>/<share>
// Values are JSON objects with snake_case fields (or plain strings as noted).
// kProjectionVersion changes whenever this layout or a value shape changes; the
// ledger then rebuilds every row from the log at open.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "events/state.h"
#include "storage/group_commit.h"

namespace sl {

inline constexpr std::string_view kProjectionVersion = "1";

// Stages the rows of every entity in state.dirty (puts for present rows,
// deletes for absent ones), versioned at the batch head.
void stage_dirty_rows(const State& state, LogBatch& batch);

// (key, value) pairs sorted by key, each key once.
using Rows = std::vector<std::pair<std::string, std::string>>;

// Every present row of `state`: what the proj family must hold.
Rows all_rows(const State& state);

}  // namespace sl
