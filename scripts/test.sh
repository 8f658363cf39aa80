#!/usr/bin/env bash
# One command for a fresh machine: install what the tests need (including
# tansu, the second broker under test: ~35 minutes to build, once per
# machine), then run every test of the workspace: unit, property and
# integration tests. Integration tests start their own Apache Kafka
# clusters (jars from Maven Central, cached under ~/.cache/gregor), tansu
# clusters and network namespaces; tests that only need a healthy Kafka
# cluster share one that this script starts (GREGOR_TEST_KAFKA_BOOTSTRAP)
# and stops at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh --tansu
export PATH="$HOME/.cargo/bin:$PATH"

cargo build --locked --quiet -p gregor-harness --bin gregor
gregor=target/debug/gregor
# Resolve the default Kafka version once, before tests race for it.
"$gregor" cluster fetch
shared=target/test-kafka
"$gregor" cluster down --dir "$shared" >/dev/null 2>&1 || true
rm -rf "$shared"
"$gregor" cluster up --dir "$shared" --base-port 19050
trap '"$gregor" cluster down --dir "$shared" >/dev/null 2>&1 || true' EXIT
export GREGOR_TEST_KAFKA_BOOTSTRAP=127.0.0.1:19050,127.0.0.1:19051,127.0.0.1:19052

cargo nextest run --workspace --locked --profile "${NEXTEST_PROFILE:-default}" "$@"
cargo test --workspace --locked --doc --quiet
