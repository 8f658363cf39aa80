#!/usr/bin/env bash
# One command for a fresh machine: install everything, fetch the default
# Apache Kafka version from Maven Central, then run the default scenario
# on the embedded 3-node Kafka cluster. Safe to run again.
#   bash scripts/install.sh            # install + `gregor run`
#   bash scripts/install.sh --no-run   # install only
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
export PATH="$HOME/.cargo/bin:$PATH"
echo "install: building and installing gregor"
cargo install --locked --path harness --quiet
echo "install: fetching Apache Kafka's jars from Maven Central (once per version)"
gregor cluster fetch
if [ "${1:-}" != "--no-run" ]; then
  echo "install: running the default scenario (gregor run)"
  exec gregor run
fi
