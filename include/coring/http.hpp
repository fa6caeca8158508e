// SPDX-License-Identifier: MIT
// The http component (coring::http): the HTTP client (aiohttp's ClientSession) on libcurl, and
// the HTTP/1.1 server (App, serve: FastAPI's and aiohttp.web's habits).
// find_package(coring REQUIRED COMPONENTS http); link coring::http.
#pragma once

#include <coring/http/client.hpp>
#include <coring/http/errors.hpp>
#include <coring/http/headers.hpp>
#include <coring/http/parser.hpp>
#include <coring/http/server.hpp>
