// SPDX-License-Identifier: MIT
// The http component (coring::http): the HTTP client (aiohttp's ClientSession) on libcurl.
// find_package(coring REQUIRED COMPONENTS http); link coring::http.
#pragma once

#include <coring/http/client.hpp>
#include <coring/http/errors.hpp>
#include <coring/http/headers.hpp>
