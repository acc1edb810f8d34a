#!/usr/bin/env bash
# CI: install Ceph (mon, osd, radosgw) so that `npm test` runs the RGW compatibility suite
# (test/compat). Called by .ci/run before `npm test`. A no-op when Ceph is already installed; fails
# (rather than letting the suite be skipped) when it cannot be installed.
set -euo pipefail
cd "$(dirname "$0")"
started=$(date +%s)
bash ./rgw.sh install
echo "ci-install-rgw: ready in $(($(date +%s) - started)) s"
