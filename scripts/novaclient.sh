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

VENV="${NIP_NOVACLIENT_VENV:-$HOME/.cache/nova-images-proxy/novaclient-venv}"
VERSION="${NIP_NOVACLIENT_VERSION:-7.1.2}"
PYTHON="${NIP_PYTHON:-python3}"

die() { echo "novaclient.sh: $*" >&2; exit 1; }
log() { echo "novaclient.sh: $*" >&2; }

installed() {
  [ -x "$VENV/bin/python" ] || return 1
  "$VENV/bin/python" - "$VERSION" >/dev/null 2>&1 <<'PY'
import importlib.metadata as m, sys
assert m.version("python-novaclient") == sys.argv[1]
import novaclient.client, keystoneauth1.session  # noqa: F401
PY
}

install() {
  mkdir -p "$(dirname "$VENV")"
  # One installer at a time (several test runs may start together).
  exec 9>"$VENV.lock"
  flock 9
  if installed; then
    echo "$VENV/bin/python"
    return
  fi
  log "installing python-novaclient==$VERSION into $VENV"
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV" >&2 || die "cannot create the venv $VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "python-novaclient==$VERSION" >&2 \
    || die "pip install python-novaclient==$VERSION failed"
  installed || die "the venv $VENV is not usable"
  log "python-novaclient $VERSION ready in $VENV"
  echo "$VENV/bin/python"
}

case "${1:-}" in
  install) install ;;
  *)
    sed -n '2,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
