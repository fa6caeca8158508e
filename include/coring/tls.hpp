// SPDX-License-Identifier: MIT
// coring::tls, the TLS component (find_package(coring COMPONENTS tls), target coring::tls):
// SslContext and TLS errors for open_connection(..., {.ssl = ctx}), start_server(..., {.ssl =
// ctx}) and StreamWriter::start_tls, on OpenSSL 3 through memory BIOs.
#pragma once

#include <coring/tls/connection.hpp>
#include <coring/tls/context.hpp>
#include <coring/tls/errors.hpp>
