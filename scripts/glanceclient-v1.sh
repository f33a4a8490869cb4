#!/usr/bin/env bash
# python-glanceclient's Glance v1 client code (glanceclient.v1, from PyPI) in a
# venv, to check the service's Glance v1 image reads with a real v1 client.
#
#   scripts/glanceclient-v1.sh install      create or update the venv; prints its python
#   scripts/glanceclient-v1.sh run ARGS...  tests/glanceclient_v1/check.py ARGS with that python
#                                           (--url URL --token TOKEN --image ID ...; see check.py)
#
# glanceclient.v1 (HEAD/GET /v1/images/<id>, GET /v1/images/detail paging) is
# still shipped by every python-glanceclient release, 4.x included (checked:
# 3.6.0 and 4.13.0 have glanceclient/v1/); `install` refuses a release without it.
#
# Environment:
#   NIP_GLANCECLIENT_V1_VENV  venv (default: $HOME/.cache/nova-images-proxy/glanceclient-v1-venv)
#   NIP_GLANCECLIENT_VERSION  python-glanceclient version (default: 4.13.0)
#   NIP_PYTHON                interpreter used to create the venv (default: python3)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${NIP_GLANCECLIENT_V1_VENV:-$HOME/.cache/nova-images-proxy/glanceclient-v1-venv}"
VERSION="${NIP_GLANCECLIENT_VERSION:-4.13.0}"
PYTHON="${NIP_PYTHON:-python3}"

die() { echo "glanceclient-v1.sh: $*" >&2; exit 1; }
log() { echo "glanceclient-v1.sh: $*" >&2; }

installed() {
  [ -x "$VENV/bin/python" ] || return 1
  "$VENV/bin/python" - "$VERSION" >/dev/null 2>&1 <<'PY'
import importlib.metadata as m, sys
assert m.version("python-glanceclient") == sys.argv[1]
import glanceclient.v1.client, glanceclient.v1.images  # noqa: F401
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
  log "installing python-glanceclient==$VERSION into $VENV"
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV" >&2 || die "cannot create the venv $VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "python-glanceclient==$VERSION" >&2 \
    || die "pip install python-glanceclient==$VERSION failed"
  "$VENV/bin/python" -c 'import glanceclient.v1.client, glanceclient.v1.images' 2>/dev/null \
    || die "python-glanceclient $VERSION has no glanceclient.v1"
  installed || die "the venv $VENV is not usable"
  log "python-glanceclient $VERSION (with glanceclient.v1) ready in $VENV"
  echo "$VENV/bin/python"
}

case "${1:-}" in
  install)
    install
    ;;
  run)
    shift
    python="$(install)"
    NO_PROXY='*' no_proxy='*' exec "$python" "$ROOT/tests/glanceclient_v1/check.py" "$@"
    ;;
  -h|--help|help)
    sed -n '2,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    ;;
  *)
    sed -n '2,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
