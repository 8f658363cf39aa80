#!/usr/bin/env bash
# One command for a fresh machine: install what the tests need, then run
# every test of the workspace (unit, property and integration tests; the
# integration tests start their own tansu clusters on 127.0.0.1).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
export PATH="$HOME/.cargo/bin:$PATH"
cargo nextest run --workspace --locked --profile "${NEXTEST_PROFILE:-default}" "$@"
cargo test --workspace --locked --doc --quiet
