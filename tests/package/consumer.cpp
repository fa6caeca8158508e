// SPDX-License-Identifier: MIT
// A tiny coring program built against an installed or vendored coring.
#include <coring/coring.hpp>
#include <coring/postgres.hpp>
#include <coring/tls.hpp>

#include <chrono>
#include <cstdio>

using namespace std::chrono_literals;

static coring::Task<int> answer() {
    co_await coring::sleep(1ms);
    co_return 42;
}

int main() {
    // The tls component links (OpenSSL comes with it) and its defaults are a verifying client.
    auto ctx = coring::tls::SslContext::client();
    if (ctx.verify_mode() != coring::tls::VerifyMode::required || !ctx.check_hostname()) {
        return 2;
    }
    // The postgres component links (libpq comes with it).
    if (coring::postgres::type_name(coring::postgres::oids::int4) != "int4") {
        return 3;
    }
    int v = coring::run(answer());
    std::printf("coring %s says %d\n", CORING_VERSION, v);
    return v == 42 ? 0 : 1;
}
