// Fresh identifiers in the shapes of SPEC §1.1, and request ids.
// Random (not guessable across accounts); uniqueness is re-checked by decide().
// Thread safety: safe from any thread (thread_local generators).
#pragma once

#include <string>

namespace sl::api {

std::string new_account_id();      // 16 decimal digits starting with 1 (below 2^53)
std::string new_access_key_id();   // "LTAI" + 20 alnum
std::string new_access_key_secret();  // 30 alnum
std::string new_image_id();        // "m-" + 20 lowercase alnum
std::string new_instance_id();     // "i-" + 20 lowercase alnum
std::string new_disk_id();         // "d-" + 20 lowercase alnum
std::string new_directory_id();    // "rd-" + 10 lowercase alnum
std::string new_root_folder_id();  // "r-" + 6 lowercase alnum
std::string new_folder_id();       // "fd-" + 10 lowercase alnum
std::string new_share_id();        // "rs-" + 10 lowercase alnum
std::string new_handshake_id();    // "h-" + 16 lowercase alnum
std::string new_request_id();      // UUID-shaped, uppercase hex

}  // namespace sl::api
