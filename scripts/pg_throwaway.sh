#!/usr/bin/env bash
# A throwaway PostgreSQL 15 cluster for the store tests: initdb in a fresh temporary folder,
# listening only on a unix socket in that folder (no TCP), database asdcap_test.
#   scripts/pg_throwaway.sh start        prints the folder on line 1 and the URL on line 2
#   scripts/pg_throwaway.sh stop FOLDER  stops the cluster and removes the folder
# As root (CI) the cluster runs as the `postgres` system user (initdb refuses root); otherwise as
# the invoking user.
set -euo pipefail
bin=${ASDCAP_PG_BIN:-/usr/lib/postgresql/15/bin}
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
case "${1:-}" in
  start)
    [ -x "$bin/pg_ctl" ] || { echo "pg_throwaway: no PostgreSQL 15 at $bin" >&2; exit 1; }
    # In /tmp, not $TMPDIR: the socket path must stay under the 107-byte unix socket limit.
    dir=$(mktemp -d /tmp/asdcap-pg.XXXXXX)
    # A start that fails part-way leaves nothing behind.
    trap '[ -d "$dir/data" ] && as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1; rm -rf "$dir"' EXIT
    chmod 755 "$dir"
    [ "$(id -u)" -eq 0 ] && chown postgres: "$dir"
    user=$(if [ "$(id -u)" -eq 0 ]; then echo postgres; else id -un; fi)
    as_owner "$bin/initdb" -D "$dir/data" -U "$user" -A trust -E UTF8 --no-locale >"$dir/initdb.log" 2>&1 ||
      { cat "$dir/initdb.log" >&2; exit 1; }
    # A test cluster thrown away afterwards: no durability needed, so fsync and friends are off
    # (much faster commits). No TCP listener; the socket lives in the cluster's own folder.
    # The port only names the socket file; the folder is unique, so the default one cannot clash.
    port=5432
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start \
      -o "-c listen_addresses='' -c unix_socket_directories='$dir' -p $port -c fsync=off \
-c synchronous_commit=off -c full_page_writes=off -c max_connections=200" >/dev/null ||
      { cat "$dir/server.log" >&2; exit 1; }
    as_owner "$bin/createdb" -h "$dir" -p "$port" -U "$user" asdcap_test
    trap - EXIT
    echo "$dir"
    echo "postgresql:///asdcap_test?host=$dir&port=$port&user=$user"
    ;;
  stop)
    dir=${2:?usage: pg_throwaway.sh stop FOLDER}
    [ -d "$dir/data" ] && as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$dir"
    ;;
  *)
    echo "usage: pg_throwaway.sh start | stop FOLDER" >&2
    exit 2
    ;;
esac
