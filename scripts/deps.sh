#!/usr/bin/env bash
# Installs what gregor needs on a fresh Debian machine, skipping what is
# already there: build tools for librdkafka, iproute2 + nftables for network
# partitions, faketime for clock skew, fonts-dejavu-core for text in PNG plots,
# chromium for the report's browser test, cargo-nextest for the tests, and the tansu broker (built from
# crates.io: about 20 minutes the first time, skipped afterwards).
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

need_apt=()
for pair in make:make g++:g++ pkg-config:pkg-config ip:iproute2 nft:nftables curl:curl; do
  cmd=${pair%%:*}; pkg=${pair#*:}
  command -v "$cmd" >/dev/null 2>&1 || need_apt+=("$pkg")
done
dpkg -s zlib1g-dev >/dev/null 2>&1 || need_apt+=(zlib1g-dev)
dpkg -s faketime >/dev/null 2>&1 || need_apt+=(faketime)   # clock-skew fault
dpkg -s fonts-dejavu-core >/dev/null 2>&1 || need_apt+=(fonts-dejavu-core)   # text in PNG plots
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)   # the report's headless browser test
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "deps: installing ${need_apt[*]} with apt-get"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

export PATH="$HOME/.cargo/bin:$PATH"
if ! command -v cargo >/dev/null 2>&1; then
  echo "deps: cargo is missing: install Rust (rustup) first" >&2
  exit 1
fi

if ! cargo nextest --version >/dev/null 2>&1; then
  echo "deps: installing cargo-nextest"
  cargo install --locked cargo-nextest
fi

TANSU_VERSION=0.6.0
if command -v tansu >/dev/null 2>&1 && tansu --version 2>/dev/null | grep -q "$TANSU_VERSION"; then
  echo "deps: tansu $TANSU_VERSION present at $(command -v tansu)"
else
  echo "deps: building tansu $TANSU_VERSION from crates.io (about 20 minutes, once per machine)"
  cargo install --locked "tansu@$TANSU_VERSION" --features libsql
fi
