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

# shellcheck source=lib/client-venv.sh
. "$ROOT/scripts/lib/client-venv.sh"

install() {
  # A release without glanceclient.v1 fails the check and is refused.
  client_venv_install "$VENV" python-glanceclient "$VERSION" 'import glanceclient.v1.client, glanceclient.v1.images'
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
