#!/usr/bin/env bash
# Install and run a real OpenStack Nova compute API (nova 34, from PyPI) on
# loopback, for the load-balancer tests of nova-images-proxy (HAProxy sends the
# non-images paths to it).
#
#   scripts/nova.sh install
#   scripts/nova.sh start --port PORT --state DIR --glance URL [--fresh]
#                         [--proxy-headers] [--glance-link-prefix URL] [--workers N]
#   scripts/nova.sh stop  --state DIR
#
# Nova is served by uwsgi (nova.wsgi.osapi_compute:application; Nova 34 ships no
# nova-api script) bound to 127.0.0.1:PORT only, on SQLite API and cell databases,
# with oslo.messaging's in-process fake:// transport (the API calls it does not
# need no message bus). Nova 34 has no noauth2 any more: a small paste filter
# takes the place of keystonemiddleware's authtoken and reads `X-Auth-Token:
# <user>:<project>` tokens (user `admin` has the admin role), so the rest of
# Nova's stock pipeline runs as in a Keystone deployment.
# --proxy-headers sets [oslo_middleware] enable_proxy_headers_parsing = true
# (as behind a TLS-terminating load balancer); --glance-link-prefix sets
# [api] glance_link_prefix (the base of the images' alternate links); --workers sets
# uwsgi's processes (default 1; scripts/bench runs 2, one per core).
#
# Environment:
#   NIP_NOVA_VENV     venv to create/use (default: $HOME/.cache/nova-images-proxy/nova-venv)
#   NIP_NOVA_VERSION  nova version to install (default: 34.0.0)
#   NIP_PYTHON        interpreter used to create the venv (default: python3)
set -euo pipefail

VENV="${NIP_NOVA_VENV:-$HOME/.cache/nova-images-proxy/nova-venv}"
NOVA_VERSION="${NIP_NOVA_VERSION:-34.0.0}"
PYTHON="${NIP_PYTHON:-python3}"
HOST=127.0.0.1
export NO_PROXY='*' no_proxy='*'

die() { echo "nova.sh: $*" >&2; exit 1; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

installed_version() {
  [ -x "$VENV/bin/python" ] || return 0
  "$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("nova"))' 2>/dev/null || true
}

complete() {
  [ "$(installed_version)" = "$NOVA_VERSION" ] && [ -x "$VENV/bin/uwsgi" ] && [ -x "$VENV/bin/nova-manage" ]
}

cmd_install() {
  local t0; t0="$(now)"
  command -v gcc >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc libc6-dev >/dev/null; }
  mkdir -p "$(dirname "$VENV")"
  exec 9>"$VENV.lock"
  flock 9
  local action="already installed"
  if ! complete; then
    "$VENV/bin/python" -c '' >/dev/null 2>&1 || "$PYTHON" -m venv --clear "$VENV"
    echo "nova.sh: pip install nova==$NOVA_VERSION uwsgi into $VENV" >&2
    "$VENV/bin/python" -m pip install -q --upgrade pip setuptools wheel
    "$VENV/bin/python" -m pip install -q "nova==$NOVA_VERSION" uwsgi
    "$VENV/bin/python" -m pip freeze >"$VENV/freeze.txt"
    complete || die "venv $VENV is incomplete after pip install"
    action="installed"
  fi
  echo "nova $(installed_version) $action in $VENV ($(elapsed "$t0")s)"
}

parse() {
  PORT="" STATE="" GLANCE="" FRESH=0 PROXY_HEADERS=false GLANCE_LINK_PREFIX="" WORKERS=1
  while [ $# -gt 0 ]; do
    case "$1" in
      --port) PORT="$2"; shift 2 ;;
      --state) STATE="$2"; shift 2 ;;
      --glance) GLANCE="$2"; shift 2 ;;
      --fresh) FRESH=1; shift ;;
      --proxy-headers) PROXY_HEADERS=true; shift ;;
      --glance-link-prefix) GLANCE_LINK_PREFIX="$2"; shift 2 ;;
      --workers) WORKERS="$2"; shift 2 ;;
      *) die "unknown argument: $1" ;;
    esac
  done
  [ -n "$STATE" ] || die "--state DIR is required"
  mkdir -p "$STATE"
  STATE="$(cd "$STATE" && pwd)"
}

pid_of() {
  local pid
  [ -s "$1/nova-api.pid" ] || return 1
  pid="$(tr -dc '0-9' <"$1/nova-api.pid")"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$1/etc/nova-uwsgi.ini" || return 1
  echo "$pid"
}

cmd_stop() {
  parse "$@"
  local pid i
  if ! pid="$(pid_of "$STATE")"; then echo "nova not running (state $STATE)"; return 0; fi
  kill -INT "$pid" 2>/dev/null || true
  for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && { pkill -KILL -P "$pid" 2>/dev/null || true; kill -KILL "$pid" 2>/dev/null || true; }
  rm -f "$STATE/nova-api.pid"
  echo "nova stopped (pid $pid)"
}

write_config() {
  local etc="$STATE/etc"
  mkdir -p "$etc" "$STATE/locks" "$STATE/logs" "$STATE/lib"
  cat >"$etc/nova.conf" <<EOF
# Written by scripts/nova.sh; regenerated on every start.
[DEFAULT]
debug = false
use_stderr = true
host = nip-test
state_path = $STATE
transport_url = fake://
[api_database]
connection = sqlite:///$STATE/nova_api.sqlite
[database]
connection = sqlite:///$STATE/nova.sqlite
[glance]
api_servers = $GLANCE
[oslo_concurrency]
lock_path = $STATE/locks
[oslo_middleware]
enable_proxy_headers_parsing = $PROXY_HEADERS
[api]
glance_link_prefix = $GLANCE_LINK_PREFIX
EOF
  # Nova's stock paste file, keystonemiddleware's authtoken replaced.
  sed -e 's/^\[filter:authtoken\]$/[filter:authtoken_keystone]/' "$VENV/etc/nova/api-paste.ini" >"$etc/api-paste.ini"
  cat >>"$etc/api-paste.ini" <<'EOF'

# scripts/nova.sh: <user>:<project> tokens instead of keystonemiddleware
[filter:authtoken]
paste.filter_factory = nip_noauth:filter_factory
EOF
  cat >"$STATE/lib/nip_noauth.py" <<'EOF'
"""Stands in for keystonemiddleware's auth_token: X-Auth-Token <user>:<project>."""
import json

import webob.dec
import webob.exc

_STRIP = ['X-Identity-Status', 'X-Roles', 'X-Role', 'X-User-Id', 'X-User-Name', 'X-User',
          'X-Project-Id', 'X-Project-Name', 'X-Tenant-Id', 'X-Tenant-Name', 'X-Tenant',
          'X-Service-Catalog', 'X-Is-Admin-Project', 'OpenStack-System-Scope']


class NoAuth(object):
    def __init__(self, app):
        self.app = app

    @webob.dec.wsgify
    def __call__(self, req):
        for h in _STRIP:
            req.headers.pop(h, None)
        token = req.headers.get('X-Auth-Token')
        if not token:
            body = {'error': {'code': 401, 'title': 'Unauthorized',
                              'message': 'The request you have made requires authentication.'}}
            raise webob.exc.HTTPUnauthorized(
                body=json.dumps(body), charset='UTF-8', content_type='application/json',
                headers=[('WWW-Authenticate', 'Keystone uri="http://127.0.0.1:5000"')])
        user, _, project = token.partition(':')
        project = project or user
        roles = 'admin,member,reader' if user == 'admin' else 'member,reader'
        for k, v in (('X-Identity-Status', 'Confirmed'), ('X-User-Id', user), ('X-User-Name', user),
                     ('X-User-Domain-Id', 'default'), ('X-Project-Id', project),
                     ('X-Project-Name', project), ('X-Project-Domain-Id', 'default'),
                     ('X-Roles', roles), ('X-Is-Admin-Project', 'True')):
            req.headers[k] = v
        return req.get_response(self.app)


def filter_factory(global_conf, **local_conf):
    return NoAuth
EOF
  cat >"$etc/nova-uwsgi.ini" <<EOF
; Written by scripts/nova.sh; regenerated on every start.
[uwsgi]
module = nova.wsgi.osapi_compute:application
virtualenv = $VENV
pythonpath = $STATE/lib
env = OS_NOVA_CONFIG_DIR=$etc
http-socket = $HOST:$PORT
processes = $WORKERS
threads = 1
master = true
enable-threads = true
lazy-apps = true
die-on-term = true
need-app = true
exit-on-reload = false
buffer-size = 65535
; http-socket closes after every response; say so, or keep-alive clients race the close
add-header = Connection: close
listen = 128
pidfile = $STATE/nova-api.pid
daemonize = $STATE/logs/nova-api.log
EOF
}

cmd_start() {
  parse "$@"
  [[ "$PORT" =~ ^[0-9]+$ ]] || die "--port PORT is required"
  [ -n "$GLANCE" ] || die "--glance URL is required"
  complete || die "Nova $NOVA_VERSION is not installed in $VENV; run: $0 install"
  local t0 pid; t0="$(now)"
  if pid="$(pid_of "$STATE")"; then
    [ "$FRESH" -eq 1 ] || { echo "nova already up (pid $pid)"; return 0; }
    # In a subshell: cmd_stop parses its own arguments into the same globals.
    (cmd_stop --state "$STATE") >/dev/null
  fi
  [ "$FRESH" -eq 0 ] || rm -rf "$STATE/nova_api.sqlite" "$STATE/nova.sqlite"
  write_config
  # The app registers a service row (cell DB) and checks compute versions (API DB).
  local nm=("$VENV/bin/nova-manage" --config-file "$STATE/etc/nova.conf")
  { "${nm[@]}" api_db sync && "${nm[@]}" db sync --local_cell; } >>"$STATE/logs/nova-manage.log" 2>&1 \
    || { tail -20 "$STATE/logs/nova-manage.log" >&2; die "nova-manage failed"; }
  : >"$STATE/logs/nova-api.log"
  "$VENV/bin/uwsgi" --ini "$STATE/etc/nova-uwsgi.ini" >/dev/null 2>&1
  local deadline=$(( $(date +%s) + 180 ))
  until curl -s -o /dev/null --max-time 2 "http://$HOST:$PORT/"; do
    if [ "$(date +%s)" -gt "$deadline" ]; then
      tail -40 "$STATE/logs/nova-api.log" >&2
      die "nova did not answer on http://$HOST:$PORT"
    fi
    sleep 0.2
  done
  echo "nova up on http://$HOST:$PORT (pid $(pid_of "$STATE")) in $(elapsed "$t0")s"
}

[ $# -ge 1 ] || { sed -n '2,26p' "$0"; exit 2; }
sub="$1"; shift
case "$sub" in
  install) cmd_install "$@" ;;
  start) cmd_start "$@" ;;
  stop) cmd_stop "$@" ;;
  *) sed -n '2,26p' "$0"; exit 2 ;;
esac
