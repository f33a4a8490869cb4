#!/usr/bin/env bash
# Install the Debian packages the operating tests run for real: HAProxy (the
# load-balancer recipe in etc/haproxy/), Prometheus (scrapes the metrics
# listener), systemd-analyze (checks the unit in etc/systemd/) and Chromium
# (renders the /usage page headless in tests/usage_page.rs). apt-get only
# when a tool is missing; prints `name path` per tool.
#   scripts/debian-tools.sh install
set -euo pipefail
[ "${1:-}" = install ] || { echo "usage: $0 install" >&2; exit 2; }
missing=()
command -v haproxy >/dev/null 2>&1 || missing+=(haproxy)
command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  echo "debian-tools.sh: apt-get install ${missing[*]}" >&2
  apt-get update -qq
  # The packages' own services are not wanted (the tests start their own on
  # loopback): policy-rc.d keeps apt from starting them.
  policy=/usr/sbin/policy-rc.d
  created=""
  if [ ! -e "$policy" ]; then printf '#!/bin/sh\nexit 101\n' >"$policy"; chmod +x "$policy"; created=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  [ -z "$created" ] || rm -f "$policy"
fi
echo "haproxy $(command -v haproxy)"
echo "prometheus $(command -v prometheus)"
echo "systemd-analyze $(command -v systemd-analyze)"
echo "chromium $(command -v chromium)"
