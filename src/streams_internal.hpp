// SPDX-License-Identifier: MIT
// Internals of the streams shared by src/ and the tests: open_connection after resolution, and
// a switch for tests of the single-accept path.
#pragma once

#include <coring/net/address.hpp>
#include <coring/streams.hpp>
#include <coring/task.hpp>

#include <string>
#include <utility>
#include <vector>

namespace coring::detail {

/// open_connection after resolution: tries addresses in order, binding to the first of local
/// of the same family when options.local_addr is set; target names the host in errors.
[[nodiscard]] Task<std::pair<StreamReader, StreamWriter>>
connect_first(std::vector<AddrInfo> addresses,
              std::vector<AddrInfo> local,
              std::string target,
              ConnectOptions options);

/// Allows (the default) or forbids multishot accept for servers armed from now on, as if the
/// kernel were older than Linux 5.19. For tests of the single-accept path.
void set_multishot_accept(bool enabled) noexcept;

} // namespace coring::detail
