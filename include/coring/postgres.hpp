// SPDX-License-Identifier: MIT
// The postgres component's umbrella header: an async PostgreSQL client on libpq (asyncpg).
#pragma once

#include <coring/postgres/connection.hpp>
#include <coring/postgres/errors.hpp>
#include <coring/postgres/pool.hpp>
#include <coring/postgres/row.hpp>
#include <coring/postgres/types.hpp>
