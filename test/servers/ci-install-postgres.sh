#!/usr/bin/env bash
# CI: install PostgreSQL (Debian's packages) so that `npm test` runs the suites on a real PostgreSQL
# server (each starts its own throwaway cluster with test/servers/postgres.sh). Called by .ci/run before
# `npm test`. A no-op when PostgreSQL is already installed; fails (rather than letting the suites be
# skipped) when it cannot be installed. Never starts Debian's own cluster.
set -euo pipefail
cd "$(dirname "$0")"
started=$(date +%s)
bash ./postgres.sh install
echo "ci-install-postgres: ready in $(($(date +%s) - started)) s"
