// SPDX-License-Identifier: MIT
// Umbrella header: every public coring header (import asyncio).
#pragma once

#include <coring/config.hpp>
#include <coring/errors.hpp>
#include <coring/event_loop.hpp>
#include <coring/executor.hpp>
#include <coring/file.hpp>
#include <coring/future.hpp>
#include <coring/log.hpp>
#include <coring/run.hpp>
#include <coring/signals.hpp>
#include <coring/sleep.hpp>
#include <coring/task.hpp>
