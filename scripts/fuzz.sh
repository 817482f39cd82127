#!/usr/bin/env bash
# Runs every fuzz target of the project for a while (default 60s each): the long run that
# scripts/test.sh leaves out. Usage: scripts/fuzz.sh [seconds-per-target]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
secs=${1:-60}
for pkg in $(go list ./...); do
  for target in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
    echo "== $pkg $target (${secs}s)"
    # Short minimization: the server-level targets cost a millisecond an input, so the default
    # minute of minimizing each new input would leave little time for fuzzing.
    go test -run='^$' -fuzz="^${target}\$" -fuzztime="${secs}s" -fuzzminimizetime=5s "$pkg"
  done
done
