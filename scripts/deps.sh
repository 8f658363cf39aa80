#!/usr/bin/env bash
# Installs what gregor needs on a fresh Debian machine, skipping what is
# already there:
#   - apt: build tools for librdkafka, Java and Maven (Apache Kafka runs from
#     Maven Central's jars), iproute2 + nftables for network partitions,
#     faketime for clock skew, fuse3 (fusermount3, for lazy disks), chromium for the report's browser tests;
#   - cargo-nextest for the tests;
#   - with --tansu: the tansu broker (a second Kafka-API broker under test),
#     built from crates.io: about 35 minutes the first time, skipped afterwards.
set -euo pipefail

want_tansu=false
for arg in "$@"; do
  case "$arg" in
    --tansu) want_tansu=true ;;
    *) echo "deps: unknown option $arg" >&2; exit 2 ;;
  esac
done

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

need_apt=()
for pair in make:make g++:g++ pkg-config:pkg-config ip:iproute2 nft:nftables curl:curl \
            java:default-jre-headless mvn:maven chromium:chromium; do
  cmd=${pair%%:*}; pkg=${pair#*:}
  command -v "$cmd" >/dev/null 2>&1 || need_apt+=("$pkg")
done
for pkg in zlib1g-dev faketime fuse3 fonts-dejavu-core; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
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

if $want_tansu; then
  TANSU_VERSION=0.6.0
  if command -v tansu >/dev/null 2>&1 && tansu --version 2>/dev/null | grep -q "$TANSU_VERSION"; then
    echo "deps: tansu $TANSU_VERSION present at $(command -v tansu)"
  else
    echo "deps: building tansu $TANSU_VERSION from crates.io (about 35 minutes, once per machine)"
    cargo install --locked "tansu@$TANSU_VERSION" --features libsql
  fi
fi
