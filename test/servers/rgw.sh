#!/usr/bin/env bash
# A throwaway single-node Ceph cluster (one mon, one bluestore OSD on a sparse file) plus radosgw on
# 127.0.0.1, for s3migrate's compatibility tests. No systemd: the daemons run as plain processes and
# everything they write (conf, data, logs, pid files, admin sockets) stays under DIR.
#
#   test/servers/rgw.sh install                          install Debian's ceph packages (no-op when present)
#   test/servers/rgw.sh start DIR                        start a new cluster in DIR (replacing an old one
#                                                        of ours); prints the endpoint, e.g. http://127.0.0.1:40123
#   test/servers/rgw.sh stop DIR                         stop the daemons started in DIR (by PID)
#   test/servers/rgw.sh create-user DIR UID ACCESS SECRET  an S3 user with fixed keys (idempotent)
#   test/servers/rgw.sh endpoint DIR                     print the endpoint of a running cluster
#
# Cluster auth is `none` and every pool has size 1: a test fixture, never a real cluster.
set -euo pipefail

PACKAGES=(radosgw ceph-mon ceph-osd ceph-base ceph-common)
BINARIES=(radosgw radosgw-admin ceph-mon ceph-osd ceph monmaptool)
START_TIMEOUT=${RGW_START_TIMEOUT:-90}
# SSE-KMS on the test cluster (RGW's testing backend): the key id tests ask for, and its fixed key.
KMS_KEY_ID=s3migrate-test-kms-key
KMS_KEY=c3NtaWdyYXRlLXRlc3Qta21zLWtleS0zMi1ieXRlcyE=

# RGW_VERBOSE=1: print how long each start phase took (stderr).
phase() {
  [ -z "${RGW_VERBOSE:-}" ] || printf 'rgw.sh: %-28s %6.1f s\n' "$1" "$(awk -v a="$START_NS" -v b="$(date +%s%N)" 'BEGIN{printf "%.1f", (b-a)/1e9}')" >&2
}

die() {
  echo "rgw.sh: $*" >&2
  exit 1
}

have_binaries() {
  local bin
  for bin in "${BINARIES[@]}"; do command -v "$bin" >/dev/null 2>&1 || return 1; done
}

cmd_install() {
  if have_binaries; then
    echo "rgw.sh: ceph $(ceph --version 2>/dev/null | awk '{print $3}') already installed"
    return 0
  fi
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || die "installing ceph needs root (or sudo): apt-get install ${PACKAGES[*]}"
    sudo=(sudo)
  fi
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq
  # The packages' maintainer scripts only enable systemd units; nothing is started here.
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null
  have_binaries || die "apt-get install finished but some of ${BINARIES[*]} are missing"
  echo "rgw.sh: installed ceph $(ceph --version | awk '{print $3}')"
}

# A TCP port on 127.0.0.1 that nothing listens on right now.
free_port() {
  node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

# Absolute path of DIR, created if missing.
abs_dir() {
  [ -n "${1:-}" ] || die "missing DIR"
  mkdir -p "$1"
  (cd "$1" && pwd -P)
}

ceph_cli() {
  ceph -c "$CONF" --connect-timeout 10 "$@"
}

dump_logs() {
  local log
  for log in "$DIR"/log/*.log; do
    [ -f "$log" ] || continue
    echo "--- tail of $log ---" >&2
    tail -n 15 "$log" >&2
  done
}

fail_start() {
  echo "rgw.sh: start failed: $*" >&2
  dump_logs
  cmd_stop "$DIR" >/dev/null 2>&1 || true
  exit 1
}

# Waits until "$@" succeeds, at most until the start deadline.
wait_until() {
  local what=$1
  shift
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$DEADLINE" ] || fail_start "timed out waiting for $what"
    sleep 0.2
  done
}

osd_up() {
  ceph_cli osd dump 2>/dev/null | grep -q '^osd\.0 up'
}

rgw_answers() {
  # Any HTTP answer (an anonymous ListBuckets) means the frontend is up.
  node -e '
    const req = require("http").get(process.argv[1], (res) => { res.resume(); process.exit(0); });
    req.on("error", () => process.exit(1));
    req.setTimeout(2000, () => process.exit(1));' "$ENDPOINT"
}

cmd_start() {
  have_binaries || die "ceph is not installed: run $0 install"
  DIR=$(abs_dir "${1:-}")
  CONF=$DIR/ceph.conf
  if [ -e "$CONF" ]; then
    # A cluster of ours from an earlier run (crashed, or never stopped): stop it and start afresh.
    grep -q '^# Written by test/servers/rgw.sh' "$CONF" || die "$CONF is not ours: use an empty directory"
    cmd_stop "$DIR"
    rm -rf "$CONF" "$DIR"/{monmap,endpoint,mon,osd,run,log,rgw,crash,tmp}
  fi
  DEADLINE=$((SECONDS + START_TIMEOUT))
  START_NS=$(date +%s%N)
  mkdir -p "$DIR"/{mon,osd,run,log,rgw,crash,tmp}

  local fsid osd_uuid mon_port rgw_port
  fsid=$(cat /proc/sys/kernel/random/uuid)
  osd_uuid=$(cat /proc/sys/kernel/random/uuid)
  mon_port=$(free_port)
  rgw_port=$(free_port)
  while [ "$rgw_port" = "$mon_port" ]; do rgw_port=$(free_port); done
  ENDPOINT=http://127.0.0.1:$rgw_port
  echo "$ENDPOINT" >"$DIR/endpoint"

  cat >"$CONF" <<EOF
# Written by test/servers/rgw.sh: a single-node test cluster. Not for real data.
[global]
fsid = $fsid
mon_host = v2:127.0.0.1:$mon_port
public_network = 127.0.0.1/32
mon_initial_members = a
auth_cluster_required = none
auth_service_required = none
auth_client_required = none
# With cluster auth none, radosgw (and the ceph CLI) loop on "get_initial_auth_request returned -13"
# unless they may talk crc to the mon.
ms_mon_client_mode = crc secure
keyring = /dev/null
run_dir = $DIR/run
admin_socket = $DIR/run/\$cluster-\$name.asok
pid_file = $DIR/run/\$name.pid
log_file = $DIR/log/\$cluster-\$name.log
mon_cluster_log_file = $DIR/log/\$cluster.log
crash_dir = $DIR/crash
tmp_dir = $DIR/tmp
log_to_stderr = false
err_to_stderr = false
osd_pool_default_size = 1
osd_pool_default_min_size = 1
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
mon_allow_pool_size_one = true
mon_warn_on_pool_no_redundancy = false
osd_crush_chooseleaf_type = 0
# The host's disk may be fuller than a real cluster likes; this cluster holds a few MiB.
mon_data_avail_warn = 2
mon_data_avail_crit = 1
# Commit monitor changes (pool creation on radosgw's first start, the OSD boot) without the default
# 1 s batching: a cold start takes about half as long.
paxos_propose_interval = 0.05

[mon]
mon_data = $DIR/mon/\$cluster-\$id

[osd]
osd_data = $DIR/osd/\$cluster-\$id
osd_objectstore = bluestore
# Not inside osd_data: there, mkfs fails with "Too many levels of symbolic links".
bluestore_block_path = $DIR/osd/block.\$id
bluestore_block_create = true
bluestore_block_size = 10737418240
osd_memory_target = 939524096
osd_op_num_shards = 1
osd_op_num_threads_per_shard = 2

[client.rgw.a]
rgw_data = $DIR/rgw
# tcp_nodelay: without it small GETs on keep-alive connections take ~45 ms each.
rgw_frontends = beast endpoint=127.0.0.1:$rgw_port tcp_nodelay=1
rgw_thread_pool_size = 64
rgw_dns_name = 127.0.0.1
# Server-side encryption on this plain-HTTP test cluster: SSE-C and SSE-KMS without TLS, and SSE-KMS
# through RGW's testing backend with one fixed key, id $KMS_KEY_ID (a fixture, never for real data).
rgw_crypt_require_ssl = false
rgw_crypt_s3_kms_backend = testing
rgw_crypt_s3_kms_encryption_keys = $KMS_KEY_ID=$KMS_KEY
EOF

  # mon
  monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$mon_port]" "$DIR/monmap" >/dev/null \
    || fail_start "monmaptool failed"
  ceph-mon -c "$CONF" --mkfs -i a --monmap "$DIR/monmap" >"$DIR/log/mkfs-mon.out" 2>&1 \
    || fail_start "ceph-mon --mkfs failed: $(tail -n 5 "$DIR/log/mkfs-mon.out")"
  ceph-mon -c "$CONF" -i a || fail_start "ceph-mon did not start"
  wait_until "the monitor" ceph_cli mon stat
  phase "monitor up"

  # osd
  local osd_id
  osd_id=$(ceph_cli osd new "$osd_uuid") || fail_start "ceph osd new failed"
  [ "$osd_id" = 0 ] || fail_start "expected osd id 0, got $osd_id"
  mkdir -p "$DIR/osd/ceph-0"
  ceph-osd -c "$CONF" -i 0 --mkfs --osd-uuid "$osd_uuid" >"$DIR/log/mkfs-osd.out" 2>&1 \
    || fail_start "ceph-osd --mkfs failed: $(tail -n 5 "$DIR/log/mkfs-osd.out")"
  phase "osd mkfs done"
  ceph-osd -c "$CONF" -i 0 || fail_start "ceph-osd did not start"
  wait_until "the OSD to be up" osd_up
  phase "osd up"

  # A second storage class, STANDARD_IA, in the default placement (RGW 16 offers only STANDARD out of the
  # box), before radosgw first reads the zonegroup. `user list` makes the default zonegroup and zone,
  # as radosgw would on its first start.
  radosgw-admin -c "$CONF" user list >"$DIR/log/placement.out" 2>&1 \
    || fail_start "radosgw-admin user list failed: $(tail -n 5 "$DIR/log/placement.out")"
  radosgw-admin -c "$CONF" zonegroup placement add --rgw-zonegroup default --placement-id default-placement \
    --storage-class STANDARD_IA >>"$DIR/log/placement.out" 2>&1 \
    || fail_start "zonegroup placement add failed: $(tail -n 5 "$DIR/log/placement.out")"
  radosgw-admin -c "$CONF" zone placement add --rgw-zone default --placement-id default-placement \
    --storage-class STANDARD_IA --data-pool default.rgw.standard-ia.data >>"$DIR/log/placement.out" 2>&1 \
    || fail_start "zone placement add failed: $(tail -n 5 "$DIR/log/placement.out")"
  phase "storage class added"

  # radosgw (creates its pools on first start)
  radosgw -c "$CONF" -n client.rgw.a || fail_start "radosgw did not start"
  wait_until "radosgw to listen on $ENDPOINT" rgw_answers
  phase "radosgw listening"
  echo "$ENDPOINT"
}

# SIGTERM to every daemon started in DIR at once (by the PIDs in their pid files), then SIGKILL to any
# still running after STOP_GRACE seconds: radosgw alone takes ~5 s to exit on SIGTERM, and the cluster
# is thrown away anyway.
cmd_stop() {
  [ -n "${1:-}" ] || die "missing DIR"
  [ -d "$1/run" ] || return 0
  local file pid pids=() i
  for file in "$1"/run/*.pid; do
    [ -f "$file" ] || continue
    pid=$(cat "$file" 2>/dev/null || true)
    rm -f "$file"
    # Only a ceph daemon: a stale pid file must not make us signal an unrelated process.
    [[ "$pid" =~ ^[0-9]+$ ]] && grep -qE '^(radosgw|ceph-osd|ceph-mon)$' "/proc/$pid/comm" 2>/dev/null || continue
    kill -TERM "$pid" 2>/dev/null && pids+=("$pid")
  done
  for ((i = 0; i < ${STOP_GRACE:-3} * 10; i++)); do
    local alive=()
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive+=("$pid"); done
    [ ${#alive[@]} -gt 0 ] || return 0
    pids=("${alive[@]}")
    sleep 0.1
  done
  kill -KILL "${pids[@]}" 2>/dev/null || true
  # Gone for good before DIR may be removed.
  for ((i = 0; i < 50; i++)); do
    local alive=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ "$alive" = 1 ] || return 0
    sleep 0.1
  done
}

cmd_create_user() {
  [ $# -eq 4 ] || die "usage: $0 create-user DIR UID ACCESS SECRET"
  local dir=$1 uid=$2 access=$3 secret=$4 out
  CONF=$(cd "$dir" && pwd -P)/ceph.conf
  [ -f "$CONF" ] || die "no cluster in $dir"
  if out=$(radosgw-admin -c "$CONF" user create --uid="$uid" --display-name="$uid" \
    --access-key="$access" --secret-key="$secret" 2>&1); then
    return 0
  fi
  # Already there (a rerun): fine when the keys are ours.
  radosgw-admin -c "$CONF" user info --uid="$uid" 2>/dev/null | grep -q "\"access_key\": \"$access\"" && return 0
  die "radosgw-admin user create failed: $out"
}

case "${1:-}" in
  install) cmd_install ;;
  start) cmd_start "${2:-}" ;;
  stop) cmd_stop "${2:-}" ;;
  create-user) shift && cmd_create_user "$@" ;;
  endpoint) cat "${2:?missing DIR}/endpoint" ;;
  *)
    sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
