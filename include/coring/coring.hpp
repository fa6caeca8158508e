// SPDX-License-Identifier: MIT
// Umbrella header: every public coring header (import asyncio).
#pragma once

#include <coring/barrier.hpp>
#include <coring/condition.hpp>
#include <coring/config.hpp>
#include <coring/debug.hpp>
#include <coring/errors.hpp>
#include <coring/event.hpp>
#include <coring/event_loop.hpp>
#include <coring/executor.hpp>
#include <coring/file.hpp>
#include <coring/future.hpp>
#include <coring/gather.hpp>
#include <coring/lock.hpp>
#include <coring/log.hpp>
#include <coring/loop_channel.hpp>
#include <coring/loop_group.hpp>
#include <coring/metrics.hpp>
#include <coring/net/address.hpp>
#include <coring/net/datagram.hpp>
#include <coring/net/socket.hpp>
#include <coring/queue.hpp>
#include <coring/readiness.hpp>
#include <coring/run.hpp>
#include <coring/semaphore.hpp>
#include <coring/server.hpp>
#include <coring/shield.hpp>
#include <coring/signals.hpp>
#include <coring/sleep.hpp>
#include <coring/streams.hpp>
#include <coring/subprocess.hpp>
#include <coring/task.hpp>
#include <coring/task_group.hpp>
#include <coring/testing.hpp>
#include <coring/timeout.hpp>
#include <coring/wait.hpp>
