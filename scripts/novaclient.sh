#!/usr/bin/env bash
# python-novaclient (from PyPI) in a cached venv, to drive the service's Nova
# images API with the real Nova client in the usage-accounting test
# (tests/usage.rs, tests/clients/usage_clients.py).
#
#   scripts/novaclient.sh install      create or update the venv; prints its python
#
# Environment:
#   NIP_NOVACLIENT_VENV     venv (default: $HOME/.cache/nova-images-proxy/novaclient-venv)
#   NIP_NOVACLIENT_VERSION  python-novaclient version (default: 7.1.2)
#   NIP_PYTHON              interpreter used to create the venv (default: python3)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=lib/client-venv.sh
. "$ROOT/scripts/lib/client-venv.sh"
VENV="${NIP_NOVACLIENT_VENV:-$HOME/.cache/nova-images-proxy/novaclient-venv}"
VERSION="${NIP_NOVACLIENT_VERSION:-7.1.2}"

case "${1:-}" in
  install) client_venv_install "$VENV" python-novaclient "$VERSION" 'import novaclient.client, keystoneauth1.session' ;;
  *)
    sed -n '2,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
