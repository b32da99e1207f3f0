#!/usr/bin/env bash
# npm test: type-check, lint, then every jest project (unit, integration, e2e) on a real control plane.
set -euo pipefail
echo "== type-check" && tsc --noEmit -p .
echo "== lint" && eslint .
echo "== tests" && node --experimental-vm-modules node_modules/jest/bin/jest.js "$@"
