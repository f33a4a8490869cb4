#!/usr/bin/env bash
# Install stunnel4 (Debian's package), the real TLS terminator the TLS tests
# put in front of Glance and Keystone (tests/tls_backends.rs). apt-get only
# when it is missing; prints its path.
#   scripts/stunnel.sh install
set -euo pipefail
[ "${1:-}" = install ] || { echo "usage: $0 install" >&2; exit 2; }
if ! command -v stunnel4 >/dev/null 2>&1; then
  echo "stunnel.sh: apt-get install stunnel4" >&2
  apt-get update -qq
  # The package's own service is not wanted: policy-rc.d keeps apt from starting it.
  policy=/usr/sbin/policy-rc.d
  created=""
  if [ ! -e "$policy" ]; then printf '#!/bin/sh\nexit 101\n' >"$policy"; chmod +x "$policy"; created=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends stunnel4 >/dev/null
  [ -z "$created" ] || rm -f "$policy"
fi
command -v stunnel4
