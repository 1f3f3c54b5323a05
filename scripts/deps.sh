#!/usr/bin/env bash
# Installs the real parts the tests and benchmarks run against (Debian
# packages), when they are missing. Idempotent; needs root (CI runs as root).
set -euo pipefail

need=()
command -v curl >/dev/null                      || need+=(curl)
command -v prometheus >/dev/null                || need+=(prometheus)
command -v prometheus-pushgateway >/dev/null    || need+=(prometheus-pushgateway)
command -v prometheus-blackbox-exporter >/dev/null || need+=(prometheus-blackbox-exporter)
command -v nginx >/dev/null                     || need+=(nginx-light)
command -v ip >/dev/null                        || need+=(iproute2)
command -v aws >/dev/null                       || need+=(awscli)
command -v chromium >/dev/null                  || need+=(chromium)

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "deps: missing ${need[*]}; run as root or install them: apt-get install ${need[*]}" >&2
  exit 1
fi
echo "deps: installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
# RUNLEVEL=1 keeps the packages' init scripts from starting daemons: tests
# start their own, on loopback ports of their choosing.
RUNLEVEL=1 apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
