#!/usr/bin/env bash
# npm run cluster:up | cluster:down | cluster:status
set -euo pipefail
exec node "$(dirname "${BASH_SOURCE[0]}")/cluster.ts" "$@"
