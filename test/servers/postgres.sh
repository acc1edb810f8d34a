#!/usr/bin/env bash
# A throwaway PostgreSQL cluster on 127.0.0.1 for s3migrate's tests (the shared PostgreSQL state). No
# systemd and never Debian's own cluster: initdb writes a new cluster into DIR, postgres runs as a plain
# process, and everything it writes (data, log, unix socket, pid file) stays under DIR.
#
#   test/servers/postgres.sh install     apt-get install postgresql (no-op when present; starts no cluster)
#   test/servers/postgres.sh start DIR   a new cluster in DIR (replacing an old one of ours); prints its port
#   test/servers/postgres.sh stop DIR    stop the cluster started in DIR (immediate shutdown)
#   test/servers/postgres.sh port DIR    print the port of a running cluster
#
# The cluster listens on 127.0.0.1 only, on a free port, with its unix socket in DIR/run. Over TCP every
# login needs a password (scram-sha-256): the test role PG_TEST_USER (default s3migrate, CREATEDB, not
# superuser) has the password PG_TEST_PASSWORD and owns the database PG_TEST_DATABASE (default = user).
# The superuser `postgres` can log in only through the socket. fsync is off: a test fixture, never data.
# As root, initdb and postgres run as the `postgres` user (created by the Debian package), owner of DIR.
set -euo pipefail

PACKAGES=(postgresql)
START_TIMEOUT=${PG_START_TIMEOUT:-30}
TEST_USER=${PG_TEST_USER:-s3migrate}
TEST_PASSWORD=${PG_TEST_PASSWORD:-s3migrate-test-password}
TEST_DATABASE=${PG_TEST_DATABASE:-$TEST_USER}
MARKER='# Written by test/servers/postgres.sh'

die() {
  echo "postgres.sh: $*" >&2
  exit 1
}

# The newest PostgreSQL's bin directory under /usr/lib/postgresql (Debian's layout), or nothing.
bindir() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -n "$dir" ] && [ -x "$dir/initdb" ] && [ -x "$dir/postgres" ] && [ -x "$dir/pg_ctl" ] && [ -x "$dir/psql" ] || return 1
  echo "$dir"
}

cmd_install() {
  local bin
  if bin=$(bindir); then
    echo "postgres.sh: PostgreSQL $("$bin/postgres" --version | awk '{print $3}') already installed ($bin)"
    return 0
  fi
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || die "installing PostgreSQL needs root (or sudo): apt-get install ${PACKAGES[*]}"
    sudo=(sudo)
  fi
  export DEBIAN_FRONTEND=noninteractive
  # Debian's postinst creates a `main` cluster and asks invoke-rc.d to start it: a policy-rc.d that
  # answers 101 ("action forbidden") keeps it stopped. Ours only while apt-get runs, and only if the
  # machine has none of its own.
  local policy=/usr/sbin/policy-rc.d own_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# Temporary, from test/servers/postgres.sh install: start no service.\nexit 101\n' \
      | "${sudo[@]}" tee "$policy" >/dev/null
    "${sudo[@]}" chmod 755 "$policy"
    own_policy=1
  fi
  local status=0
  { "${sudo[@]}" apt-get update -qq \
    && "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null; } || status=$?
  [ "$own_policy" = 0 ] || "${sudo[@]}" rm -f "$policy"
  [ "$status" = 0 ] || die "apt-get install ${PACKAGES[*]} failed (exit $status)"
  bin=$(bindir) || die "apt-get install finished but no initdb/postgres/pg_ctl/psql under /usr/lib/postgresql/*/bin"
  echo "postgres.sh: installed PostgreSQL $("$bin/postgres" --version | awk '{print $3}') ($bin)"
}

# A TCP port on 127.0.0.1 that nothing listens on right now.
free_port() {
  node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

# Runs a command as the cluster's owner: the `postgres` user when we are root (PostgreSQL refuses to
# run as root), ourselves otherwise.
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

fail_start() {
  echo "postgres.sh: start failed: $*" >&2
  if [ -f "$DIR/log/postgres.log" ]; then
    echo "--- tail of $DIR/log/postgres.log ---" >&2
    tail -n 20 "$DIR/log/postgres.log" >&2
  fi
  cmd_stop "$DIR" >/dev/null 2>&1 || true
  exit 1
}

cmd_start() {
  local bin
  bin=$(bindir) || die "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/postgres): run $0 install"
  [ -n "${1:-}" ] || die "missing DIR"
  mkdir -p "$1"
  DIR=$(cd "$1" && pwd -P)
  if [ -e "$DIR/cluster.conf" ]; then
    # A cluster of ours from an earlier run (crashed, or never stopped): stop it and start afresh.
    grep -qF "$MARKER" "$DIR/cluster.conf" || die "$DIR/cluster.conf is not ours: use an empty directory"
    cmd_stop "$DIR"
    rm -rf "$DIR"/{cluster.conf,data,run,log,port}
  fi
  [ -z "$(ls -A "$DIR")" ] || die "$DIR is not empty: use an empty directory"
  if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 || die "no \`postgres\` user to run the cluster as (it comes with Debian's postgresql package)"
    chown postgres: "$DIR"
    chmod 700 "$DIR"
    runuser -u postgres -- test -w "$DIR" \
      || die "the postgres user cannot reach $DIR (a parent directory closed to it?): use a directory under /tmp"
  fi
  # Out of the caller's directory: the postgres user may not be allowed to read it (e.g. /root).
  cd "$DIR"
  local deadline=$((SECONDS + START_TIMEOUT))
  echo "$MARKER" >"$DIR/cluster.conf"
  as_owner mkdir -p "$DIR/run" "$DIR/log"
  # --no-sync: nothing here has to survive a power cut. The C locale sorts by bytes, like SQLite.
  as_owner "$bin/initdb" --pgdata="$DIR/data" --username=postgres --encoding=UTF8 --no-locale --no-sync \
    --auth-local=trust --auth-host=scram-sha-256 >"$DIR/log/initdb.log" 2>&1 \
    || die "initdb failed: $(tail -n 5 "$DIR/log/initdb.log")"

  # Speed over durability; our settings, appended after initdb's defaults (the last one wins). The
  # port is given on the command line, so that a retry can pick another one.
  as_owner tee -a "$DIR/data/postgresql.conf" >/dev/null <<EOF

$MARKER
listen_addresses = '127.0.0.1'
unix_socket_directories = '$DIR/run'
unix_socket_permissions = 0700
password_encryption = scram-sha-256
max_connections = 100
shared_buffers = 32MB
fsync = off
synchronous_commit = off
full_page_writes = off
wal_level = minimal
max_wal_senders = 0
checkpoint_timeout = 1h
max_wal_size = 1GB
logging_collector = off
log_min_messages = warning
log_connections = off
EOF
  # Only 127.0.0.1 over TCP, always with a password; the socket (in DIR, mode 0700) trusts its owner.
  as_owner tee "$DIR/data/pg_hba.conf" >/dev/null <<EOF
$MARKER
local all all                trust
host  all all 127.0.0.1/32   scram-sha-256
EOF

  local port attempt
  for attempt in 1 2 3; do
    port=$(free_port)
    rm -f "$DIR/log/postgres.log"
    if as_owner "$bin/pg_ctl" --pgdata="$DIR/data" --log="$DIR/log/postgres.log" --options="-p $port" --wait \
      --timeout=$((deadline - SECONDS > 1 ? deadline - SECONDS : 1)) start >"$DIR/log/pg_ctl.log" 2>&1; then
      break
    fi
    # Someone took the port between free_port and postgres binding it: try another one.
    if [ "$attempt" -lt 3 ] && grep -q 'could not bind\|Address already in use' "$DIR/log/postgres.log" 2>/dev/null; then
      continue
    fi
    fail_start "pg_ctl start: $(tail -n 3 "$DIR/log/pg_ctl.log")"
  done
  echo "$port" >"$DIR/port"

  local sql
  sql="CREATE ROLE \"$TEST_USER\" LOGIN CREATEDB PASSWORD '${TEST_PASSWORD//\'/\'\'}';
CREATE DATABASE \"$TEST_DATABASE\" OWNER \"$TEST_USER\";"
  # On stdin, so that the password never shows in a process listing.
  printf '%s\n' "$sql" | as_owner "$bin/psql" -X -q -w -v ON_ERROR_STOP=1 -h "$DIR/run" -p "$port" -U postgres -d postgres \
    >"$DIR/log/setup.log" 2>&1 || fail_start "creating role $TEST_USER failed: $(tail -n 3 "$DIR/log/setup.log")"
  echo "$port"
}

# Immediate shutdown (the cluster is thrown away): SIGQUIT to the postmaster, which ends its children
# at once (0.1 s; `pg_ctl stop --wait` polls for over a second), then SIGKILL if it lingers.
cmd_stop() {
  [ -n "${1:-}" ] || die "missing DIR"
  local pidfile=$1/data/postmaster.pid pid i
  [ -f "$pidfile" ] || return 0
  pid=$(head -n 1 "$pidfile" 2>/dev/null || true)
  # Only a postgres process: a stale pid file must not make us signal an unrelated one.
  [[ "$pid" =~ ^[0-9]+$ ]] && grep -qE '^(postgres|postmaster)$' "/proc/$pid/comm" 2>/dev/null || return 0
  kill -QUIT "$pid" 2>/dev/null || true
  for ((i = 0; i < 200; i++)); do
    running "$pid" || return 0
    sleep 0.02
  done
  kill -KILL "$pid" 2>/dev/null || true
  # Its children notice the postmaster's death and leave by themselves.
}

# True while PID runs. A postmaster that exited stays a zombie until init reaps it (pg_ctl detached
# it), which on some machines takes seconds: that counts as stopped.
running() {
  [ -r "/proc/$1/status" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null
}

case "${1:-}" in
  install) cmd_install ;;
  start) cmd_start "${2:-}" ;;
  stop) cmd_stop "${2:-}" ;;
  port) cat "${2:?missing DIR}/port" ;;
  *)
    sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
