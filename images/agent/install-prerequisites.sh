#!/bin/sh
# Installs what the agent and start script need. Does nothing when the base image already has it all,
# so a base image built without apt access (as in the end-to-end tests) works too.
set -eu

has_prerequisites() {
  for command in bash curl git jq tar gzip setsid ps sha256sum timeout openssl basenc; do
    command -v "$command" >/dev/null 2>&1 || return 1
  done
  ldconfig -p | grep -q 'libicuuc\.so' || return 1
  [ -s /etc/ssl/certs/ca-certificates.crt ] || return 1
}

if has_prerequisites; then
  echo "prerequisites already present; skipping apt-get"
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update
# The ICU package name carries its version (libicu72 on Debian 12, libicu74 on Ubuntu 24.04).
libicu_package="$(apt-cache search --names-only '^libicu[0-9]+$' | cut -d' ' -f1 | sort -V | tail -n 1)"
if [ -z "$libicu_package" ]; then
  echo "no libicu package found in the configured apt sources" >&2
  exit 1
fi
apt-get install -y --no-install-recommends \
  bash ca-certificates coreutils curl git gzip jq openssl procps tar util-linux "$libicu_package"
rm -rf /var/lib/apt/lists/*
