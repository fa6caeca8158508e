// SPDX-License-Identifier: MIT
// Umbrella header: every public coring header (import asyncio).
#pragma once

#include <coring/config.hpp>
#include <coring/errors.hpp>
#include <coring/event_loop.hpp>
#include <coring/executor.hpp>
#include <coring/future.hpp>
#include <coring/log.hpp>
#include <coring/net/address.hpp>
#include <coring/net/datagram.hpp>
#include <coring/net/socket.hpp>
#include <coring/run.hpp>
#include <coring/sleep.hpp>
#include <coring/streams.hpp>
#include <coring/task.hpp>
