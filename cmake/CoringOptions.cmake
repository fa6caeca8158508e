# SPDX-License-Identifier: MIT
# Warning and sanitizer flags for coring's own targets, and liburing feature checks.
include_guard(GLOBAL)
include(CheckSymbolExists)
include(CMakePushCheckState)

# Warnings are PRIVATE to each of coring's targets; they never reach a consumer.
function(coring_set_warnings target)
    target_compile_options(${target} PRIVATE
        -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wold-style-cast
        -Woverloaded-virtual -Wcast-align -Wnull-dereference -Wimplicit-fallthrough
        -Wmissing-declarations)
    if(CORING_WERROR)
        target_compile_options(${target} PRIVATE -Werror)
    endif()
endfunction()

# Sanitizers are PRIVATE compile flags plus link flags on each executable and on coring itself.
function(coring_set_sanitizers target)
    if(CORING_SANITIZE STREQUAL "")
        return()
    endif()
    set(flags -fsanitize=${CORING_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=all)
    if(CORING_SANITIZE MATCHES "address" AND CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
        # GCC 12 overflows the stack on deep symmetric-transfer chains without this (STYLE.md 38).
        list(APPEND flags -fno-sanitize-address-use-after-scope)
    endif()
    if(CORING_SANITIZE MATCHES "undefined" AND CMAKE_CXX_COMPILER_ID STREQUAL "Clang"
            AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 15)
        # WORKAROUND(clang-14): -fsanitize=function fails in the assembler ("Cannot represent a
        # difference across sections") on coroutine templates.
        # https://github.com/llvm/llvm-project/issues/49689
        list(APPEND flags -fno-sanitize=function)
    endif()
    target_compile_options(${target} PRIVATE ${flags})
    target_compile_definitions(${target} PRIVATE CORING_SANITIZER_BUILD=1)
    target_link_options(${target} PUBLIC -fsanitize=${CORING_SANITIZE})
endfunction()

# liburing 2.3 has no version macros: probe the symbols coring may use.
function(coring_check_liburing_features)
    cmake_push_check_state(RESET)
    set(CMAKE_REQUIRED_INCLUDES ${LIBURING_INCLUDE_DIRS})
    set(CMAKE_REQUIRED_LIBRARIES ${LIBURING_LINK_LIBRARIES})
    set(CMAKE_REQUIRED_DEFINITIONS -D_GNU_SOURCE)
    check_symbol_exists(io_uring_prep_multishot_accept liburing.h CORING_HAS_MULTISHOT_ACCEPT)
    check_symbol_exists(io_uring_prep_recv_multishot liburing.h CORING_HAS_RECV_MULTISHOT)
    check_symbol_exists(io_uring_register_buf_ring liburing.h CORING_HAS_BUF_RING)
    check_symbol_exists(io_uring_submit_and_get_events liburing.h CORING_HAS_SUBMIT_AND_GET_EVENTS)
    check_symbol_exists(IORING_SETUP_DEFER_TASKRUN liburing.h CORING_HAS_DEFER_TASKRUN)
    check_symbol_exists(io_uring_prep_msg_ring liburing.h CORING_HAS_MSG_RING)
    cmake_pop_check_state()
    foreach(var CORING_HAS_MULTISHOT_ACCEPT CORING_HAS_RECV_MULTISHOT CORING_HAS_BUF_RING
            CORING_HAS_SUBMIT_AND_GET_EVENTS CORING_HAS_DEFER_TASKRUN CORING_HAS_MSG_RING)
        if(${var})
            set(${var} 1 PARENT_SCOPE)
        else()
            set(${var} 0 PARENT_SCOPE)
        endif()
    endforeach()
endfunction()
