#!/usr/bin/env bash
# Prints the directory of a `node` of the release in .node-version (the Node.js the project runs
# on), for PATH: the machine's own when it is that major or newer, otherwise the official binary
# from the npm registry (package node-linux-<arch>, whose integrity npm checks against the
# registry's), unpacked once into ${ORDERSAGA_CACHE:-~/.cache/ordersaga}/node-v<version>.
#
#   export PATH="$(bash scripts/node.sh):$PATH"
set -euo pipefail
cd "$(dirname "$0")/.."

version=$(tr -d '[:space:]' < .node-version)
major=${version%%.*}
log() { echo "node.sh: $*" >&2; }

if command -v node >/dev/null 2>&1; then
  have=$(node --version | sed 's/^v//')
  if [ "${have%%.*}" -ge "$major" ]; then
    dirname "$(command -v node)"
    exit 0
  fi
  log "this machine's Node.js is v$have; the project runs on v$major"
fi

case "$(uname -m)" in
  x86_64) arch=x64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) log "no Node.js package for $(uname -m)"; exit 1 ;;
esac
dir="${ORDERSAGA_CACHE:-$HOME/.cache/ordersaga}/node-v$version-linux-$arch"
if [ ! -x "$dir/bin/node" ]; then
  command -v npm >/dev/null 2>&1 || { log "npm is needed to fetch Node.js $version"; exit 1; }
  log "fetching Node.js $version (npm package node-linux-$arch) into $dir ..."
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  (cd "$work" && npm pack --silent "node-linux-$arch@$version" >/dev/null)
  tar -xzf "$work"/node-linux-"$arch"-"$version".tgz -C "$work"
  mkdir -p "$(dirname "$dir")"
  rm -rf "$dir"
  mv "$work/package" "$dir"
fi
"$dir/bin/node" --version >/dev/null
echo "$dir/bin"
