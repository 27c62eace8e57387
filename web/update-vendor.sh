#!/usr/bin/env bash
# Refresh web/vendor/echarts from the npm registry at the version pinned in web/package.json:
# install into a temporary directory, copy the ES module build and its LICENSE, write VERSION.
# The service serves the copied files; nothing is fetched when a page loads.
set -euo pipefail

web=$(cd "$(dirname "$0")" && pwd)
version=$(node -p 'require(process.argv[1]).dependencies.echarts' "$web/package.json")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cp "$web/package.json" "$work/"
(cd "$work" && npm install --no-audit --no-fund --ignore-scripts --omit=dev >/dev/null)

installed=$(node -p 'require(process.argv[1]).version' "$work/node_modules/echarts/package.json")
if [ "$installed" != "$version" ]; then
  echo "npm installed echarts $installed, package.json pins $version" >&2
  exit 1
fi

target="$web/vendor/echarts"
mkdir -p "$target"
cp "$work/node_modules/echarts/dist/echarts.esm.min.js" "$target/echarts.esm.min.js"
cp "$work/node_modules/echarts/LICENSE" "$target/LICENSE"
[ -f "$work/node_modules/echarts/NOTICE" ] && cp "$work/node_modules/echarts/NOTICE" "$target/NOTICE"
echo "echarts $installed" >"$target/VERSION"
echo "vendored echarts $installed into $target"
