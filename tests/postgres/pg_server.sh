#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A throwaway PostgreSQL 15 for the postgres tests and examples (a CTest fixture).
# Usage: pg_server.sh start INFO_DIR | stop INFO_DIR | restart INFO_DIR
#   start: initdb into a fresh temporary directory (as the `postgres` OS user when run as root:
#          initdb refuses root), trust authentication, fsync off, a private Unix socket directory,
#          TCP on 127.0.0.1 at the first free port from a base derived from INFO_DIR; writes
#          INFO_DIR/dsn (Unix socket), INFO_DIR/dsn_tcp, INFO_DIR/port, INFO_DIR/datadir.
#          INFO_DIR/script (this script's path, for tests that start servers of their own).
#   stop:  pg_ctl stop and remove the temporary directory.
#   restart: pg_ctl restart (fast shutdown: sessions are terminated), same port and socket.
set -euo pipefail
cmd="${1:?start|stop}"
info="${2:?INFO_DIR}"
bindir="${CORING_PG_BINDIR:-/usr/lib/postgresql/15/bin}"
self="$(realpath "$0")"

as_pg() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

stop() {
    [ -f "$info/datadir" ] || return 0
    local root
    root="$(cat "$info/datadir")"
    if [ -d "$root/data" ]; then
        as_pg "$bindir/pg_ctl" -D "$root/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$root"
    rm -f "$info/datadir" "$info/dsn" "$info/dsn_tcp" "$info/port" "$info/script"
}

case "$cmd" in
stop)
    stop
    exit 0
    ;;
restart)
    root="$(cat "$info/datadir")"
    cd "$root"
    as_pg "$bindir/pg_ctl" -D "$root/data" -l "$root/server.log" -m fast -w -t 60 restart >/dev/null
    exit 0
    ;;
start) ;;
*)
    echo "pg_server.sh: unknown command '$cmd'" >&2
    exit 2
    ;;
esac

if [ ! -x "$bindir/initdb" ]; then
    echo "pg_server.sh: $bindir/initdb not found: install postgresql-15 (bash scripts/deps.sh build)" >&2
    exit 1
fi
if [ "$(id -u)" -eq 0 ] && ! runuser -u postgres -- test -x "$bindir/initdb"; then
    # Seen in a chroot made with mktemp -d: its / is mode 0700, so no user but root can reach
    # anything. A normal system's / is 0755; give such a root the search bit everyone has there.
    if [ "$(($(stat -c '%#a' /) & 8#001))" -eq 0 ]; then
        echo "pg_server.sh: / is mode $(stat -c %a /) (no search bit for others): adding it so the postgres user can run the server" >&2
        chmod o+x /
    fi
    if ! runuser -u postgres -- test -x "$bindir/initdb"; then
        echo "pg_server.sh: the postgres user cannot execute $bindir/initdb (check the permissions of its directories)" >&2
        exit 1
    fi
fi
mkdir -p "$info"
stop # a previous run that was not cleaned up
root="$(mktemp -d /tmp/coring-pg.XXXXXX)"
echo "$root" >"$info/datadir"
mkdir -p "$root/data" "$root/sock"
if [ "$(id -u)" -eq 0 ]; then
    chown -R postgres: "$root"
fi
chmod 755 "$root"
# The server user may not be able to enter the caller's directory (a build tree under /root).
cd "$root"
as_pg "$bindir/initdb" -D "$root/data" -A trust -U postgres -E UTF8 --locale=C.UTF-8 --no-sync \
    >"$root/initdb.log" 2>&1 || {
    cat "$root/initdb.log" >&2
    exit 1
}

# Trust everywhere but for coring_pw over TCP, which must give its password (the bad-password test).
cat >"$root/data/pg_hba.conf" <<HBA
local all all trust
host all coring_pw 127.0.0.1/32 scram-sha-256
host all all 127.0.0.1/32 trust
HBA

# Ports 20000-29999 from a hash of INFO_DIR (dev and asan builds differ), then the next free one.
base=$((20000 + $(printf '%s' "$info" | cksum | cut -d' ' -f1) % 10000))
for i in $(seq 0 30); do
    port=$((base + i))
    if as_pg "$bindir/pg_ctl" -D "$root/data" -l "$root/server.log" -w -t 60 start \
        -o "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c port=$port \
            -c listen_addresses=127.0.0.1 -c unix_socket_directories=$root/sock \
            -c max_connections=200 -c shared_buffers=32MB" >/dev/null 2>&1; then
        as_pg "$bindir/psql" -X -q -h "$root/sock" -p "$port" -U postgres -d postgres \
            -c "CREATE ROLE coring_pw LOGIN PASSWORD 'coring-secret'" >/dev/null
        echo "$port" >"$info/port"
        echo "$self" >"$info/script"
        echo "host=$root/sock port=$port user=postgres dbname=postgres" >"$info/dsn"
        echo "postgresql://postgres@127.0.0.1:$port/postgres" >"$info/dsn_tcp"
        echo "pg_server.sh: PostgreSQL on port $port, socket in $root/sock"
        exit 0
    fi
    if ! grep -q "already in use" "$root/server.log" 2>/dev/null; then
        echo "pg_server.sh: the server did not start:" >&2
        cat "$root/server.log" >&2 || true
        exit 1
    fi
done
echo "pg_server.sh: no free port in $base..$((base + 30))" >&2
exit 1
