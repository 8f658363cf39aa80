#!/usr/bin/env bash
# One command for a fresh machine: install what the tests need (including
# tansu, the second broker under test: ~35 minutes to build, once per
# machine), then run every test of the workspace: unit, property and
# integration tests. The integration tests start their own Apache Kafka
# clusters (jars from Maven Central, cached under ~/.cache/gregor) and tansu
# clusters on 127.0.0.1, and network namespaces for partition faults.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh --tansu
export PATH="$HOME/.cargo/bin:$PATH"
# Resolve the default Kafka version once, before tests race for it.
cargo run --locked --quiet -p gregor-harness --bin gregor -- cluster fetch
cargo nextest run --workspace --locked --profile "${NEXTEST_PROFILE:-default}" "$@"
cargo test --workspace --locked --doc --quiet
