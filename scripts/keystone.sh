#!/usr/bin/env bash
# Install and run a real OpenStack Keystone (identity API v3, from PyPI) on loopback for
# the integration tests of nova-images-proxy's `auth.strategy = "keystone"`.
#
#   scripts/keystone.sh install
#   scripts/keystone.sh start  --port PORT --state DIR [--fresh] [--workers N]
#   scripts/keystone.sh stop   --state DIR
#   scripts/keystone.sh status --state DIR
#
# Keystone runs on sqlite under DIR with fernet tokens, served by uwsgi bound to
# 127.0.0.1:PORT only; its identity endpoint is http://127.0.0.1:PORT/v3. `start`
# bootstraps it (user admin, project admin, role admin, region RegionOne), then makes
#   project demo      user member (role member on demo), user reader (role reader on demo)
#   project other     user other (role member on other)
#   project service   user nova-images-proxy (role service on service: may validate any token)
# and prints their names, passwords and ids as NIP_KEYSTONE_* shell assignments
# (also written to DIR/keystone.env, to `source`). Passwords are random per state dir.
#
# Environment:
#   NIP_KEYSTONE_VENV     venv to create/use (default: $HOME/.cache/nova-images-proxy/keystone-venv)
#   NIP_KEYSTONE_VERSION  keystone version to install (default: 30.0.0)
#   NIP_PYTHON            interpreter used to create the venv (default: python3)
#   NIP_KEYSTONE_DEBUG    "true" turns on Keystone's debug logging (default: false)
#   NIP_KEYSTONE_TIMEOUT  seconds `start` waits for GET /v3 (default: 120)
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PROG="${SCRIPT_DIR}/$(basename "${BASH_SOURCE[0]}")"

VENV="${NIP_KEYSTONE_VENV:-$HOME/.cache/nova-images-proxy/keystone-venv}"
KEYSTONE_VERSION="${NIP_KEYSTONE_VERSION:-30.0.0}"
PYTHON="${NIP_PYTHON:-python3}"
HOST=127.0.0.1
# The WSGI application of Keystone's identity API (keystone >= 27 ships it as a
# module; the keystone-wsgi-public script is gone).
WSGI_MODULE="keystone.wsgi.api:application"

# Nothing this script talks to is behind a proxy: keep every request on loopback.
export NO_PROXY='*' no_proxy='*'

die() { echo "keystone.sh: $*" >&2; exit 1; }
log() { echo "keystone.sh: $*" >&2; }

usage() {
  sed -n '2,23p' "$PROG" | sed 's/^# \{0,1\}//'
}

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# ---------------------------------------------------------------------------- install

installed_keystone_version() {
  [ -x "$VENV/bin/python" ] || return 0
  "$VENV/bin/python" - <<'PY' 2>/dev/null || true
import importlib.metadata as m
print(m.version("keystone"))
PY
}

venv_complete() {
  [ "$(installed_keystone_version)" = "$KEYSTONE_VERSION" ] || return 1
  [ -x "$VENV/bin/uwsgi" ] && [ -x "$VENV/bin/keystone-manage" ] || return 1
  # (importing keystone.wsgi.api would build the app: look for the module only)
  "$VENV/bin/python" -c 'import importlib.util, sys; sys.exit(importlib.util.find_spec("keystone.wsgi.api") is None)' \
    >/dev/null 2>&1
}

apt_install() {
  if [ -z "${_APT_UPDATED:-}" ]; then
    apt-get update -qq
    _APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

cmd_install() {
  [ $# -eq 0 ] || die "install takes no arguments"
  local t0; t0="$(now)"
  command -v curl >/dev/null 2>&1 || { log "installing curl (apt-get)"; apt_install curl; }
  # pip builds uwsgi from source.
  command -v gcc >/dev/null 2>&1 || { log "installing gcc (apt-get)"; apt_install gcc libc6-dev; }

  mkdir -p "$(dirname "$VENV")"
  # Serialise concurrent installs into the same venv.
  exec 9>"$VENV.lock"
  flock 9

  local action="already installed"
  if ! venv_complete; then
    if ! "$VENV/bin/python" -c '' >/dev/null 2>&1; then
      # missing, or broken (its interpreter moved away): (re)create it
      "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
        || die "$PYTHON is older than 3.10; set NIP_PYTHON"
      "$PYTHON" -m venv --clear "$VENV"
    fi
    log "pip install keystone==$KEYSTONE_VERSION uwsgi into $VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip setuptools wheel
    "$VENV/bin/python" -m pip install -q "keystone==$KEYSTONE_VERSION" uwsgi
    "$VENV/bin/python" -m pip freeze >"$VENV/freeze.txt"
    venv_complete || die "venv $VENV is still incomplete after pip install"
    action="installed"
  fi
  flock -u 9
  exec 9>&-

  local uwsgi_v
  uwsgi_v="$("$VENV/bin/uwsgi" --version 2>/dev/null || echo '?')"
  echo "keystone $(installed_keystone_version) + uwsgi $uwsgi_v $action in $VENV ($(elapsed "$t0")s)"
}

# ---------------------------------------------------------------------------- helpers

abs_dir() {  # abs_dir DIR -> absolute path (DIR need not exist)
  local d="$1"
  case "$d" in /*) ;; *) d="$PWD/$d" ;; esac
  while [ "${#d}" -gt 1 ] && [ "${d%/}" != "$d" ]; do d="${d%/}"; done
  printf '%s\n' "$d"
}

pidfile_of() { printf '%s/keystone.pid\n' "$1"; }

# running_pid DIR -> prints the uwsgi master pid of DIR's instance, if it is alive
running_pid() {
  local pidf pid
  pidf="$(pidfile_of "$1")"
  [ -s "$pidf" ] || return 1
  pid="$(tr -dc '0-9' <"$pidf")"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  # guard against a recycled pid: it must be the uwsgi serving this state dir
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$1/etc/keystone-uwsgi.ini" || return 1
  printf '%s\n' "$pid"
}

port_of() { sed -n 's/^http-socket = .*:\([0-9][0-9]*\)$/\1/p' "$1/etc/keystone-uwsgi.ini" 2>/dev/null; }

port_in_use() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

# pid_alive PID -> true while PID exists and is not a zombie
pid_alive() {
  kill -0 "$1" 2>/dev/null || return 1
  local st
  st="$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)" || return 1
  [ -n "$st" ] && [ "$st" != Z ]
}

# descendants PID -> all descendant pids (uwsgi workers)
descendants() {
  local kids k
  kids="$(pgrep -P "$1" 2>/dev/null || true)"
  for k in $kids; do echo "$k"; descendants "$k"; done
}

# ---------------------------------------------------------------------------- stop/status

STOPPED_PID=""
stop_dir() {  # stop_dir DIR -> stops DIR's instance; returns 1 if none ran
  local dir="$1" pid pids p i alive=""
  STOPPED_PID=""
  if ! pid="$(running_pid "$dir")"; then
    rm -f "$(pidfile_of "$dir")"
    return 1
  fi
  pids="$pid $(descendants "$pid" | tr '\n' ' ')"
  # SIGINT: the uwsgi master signals its workers, reaps them and exits. SIGKILL what is
  # left of the workers after 5 s, and the master itself after 10 s.
  kill -INT "$pid" 2>/dev/null || true
  for i in $(seq 1 150); do
    alive=""
    for p in $pids; do if pid_alive "$p"; then alive="$alive $p"; fi; done
    [ -z "$alive" ] && break
    if [ "$i" -eq 50 ]; then
      for p in $alive; do [ "$p" = "$pid" ] || kill -KILL "$p" 2>/dev/null || true; done
    fi
    # shellcheck disable=SC2086 # a list of pids
    if [ "$i" -eq 100 ]; then kill -KILL $alive 2>/dev/null || true; fi
    sleep 0.1
  done
  [ -z "$alive" ] || die "uwsgi processes of $dir still alive after SIGKILL:$alive"
  rm -f "$(pidfile_of "$dir")"
  STOPPED_PID="$pid"
}

parse_state_only() {  # sets STATE from "--state DIR"
  STATE=""
  while [ $# -gt 0 ]; do
    case "$1" in
      --state) [ $# -ge 2 ] || die "--state needs a value"; STATE="$2"; shift 2 ;;
      --state=*) STATE="${1#--state=}"; shift ;;
      *) die "unknown argument: $1" ;;
    esac
  done
  [ -n "$STATE" ] || die "--state DIR is required"
  STATE="$(abs_dir "$STATE")"
}

cmd_stop() {
  parse_state_only "$@"
  if stop_dir "$STATE"; then
    echo "keystone stopped (pid $STOPPED_PID, state $STATE)"
  else
    echo "keystone not running (state $STATE)"
  fi
}

cmd_status() {
  parse_state_only "$@"
  local pid port
  if pid="$(running_pid "$STATE")"; then
    port="$(port_of "$STATE")"
    if curl --noproxy '*' -sf -o /dev/null --max-time 5 "http://$HOST:$port/v3"; then
      echo "keystone running on http://$HOST:$port/v3 (pid $pid, state $STATE)"
    else
      echo "keystone process running but not answering on http://$HOST:$port/v3 (pid $pid, state $STATE)"
      return 1
    fi
  else
    echo "keystone not running (state $STATE)"
    return 3
  fi
}

# ---------------------------------------------------------------------------- start

write_config() {
  local dir="$1" port="$2" workers="$3"
  local etc="$dir/etc" logs="$dir/logs"

  cat >"$etc/keystone.conf" <<EOF
# Written by scripts/keystone.sh; regenerated on every start.
[DEFAULT]
debug = ${NIP_KEYSTONE_DEBUG:-false}
use_stderr = true
public_endpoint = http://$HOST:$port

[database]
connection = sqlite:///$dir/keystone.sqlite

[identity]
# bcrypt at its cheapest: a test instance, where logins should be fast
password_hash_rounds = 4

[token]
provider = fernet
# one hour, keystone's default
expiration = 3600

[fernet_tokens]
key_repository = $dir/fernet-keys/

[fernet_receipts]
key_repository = $dir/receipt-keys/

[credential]
key_repository = $dir/credential-keys/

[oslo_concurrency]
lock_path = $dir/locks
EOF

  cat >"$etc/keystone-uwsgi.ini" <<EOF
; Written by scripts/keystone.sh; regenerated on every start.
[uwsgi]
module = $WSGI_MODULE
virtualenv = $VENV
env = OS_KEYSTONE_CONFIG_DIR=$etc
env = OS_KEYSTONE_CONFIG_FILES=keystone.conf
; plain HTTP straight from the workers, loopback only
http-socket = $HOST:$port
processes = $workers
threads = 1
master = true
enable-threads = true
lazy-apps = true
thunder-lock = true
die-on-term = true
; a worker that cannot load the app makes uwsgi exit instead of serving errors
need-app = true
exit-on-reload = false
worker-reload-mercy = 30
listen = 128
buffer-size = 65535
; http-socket closes the connection after each response but would not say so;
; keep-alive clients then race the close and get ECONNRESET.
add-header = Connection: close
pidfile = $dir/keystone.pid
vacuum = true
daemonize = $logs/keystone.log
EOF
}

manage() {  # manage CMD ARGS... -> keystone-manage with DIR's config; output to logs/keystone-manage-CMD.log
  local mlog="$STATE_DIR/logs/keystone-manage-$1.log"
  echo "+ keystone-manage $*" | sed 's/--bootstrap-password [^ ]*/--bootstrap-password ***/' >>"$mlog"
  if ! "$VENV/bin/keystone-manage" --config-file "$STATE_DIR/etc/keystone.conf" "$@" >>"$mlog" 2>&1; then
    [ -z "${MANAGE_QUIET:-}" ] || return 1
    echo "keystone.sh: keystone-manage $1 failed; last lines of $mlog:" >&2
    tail -n 30 "$mlog" >&2
    exit 1
  fi
}

# key_setup fernet|receipt|credential USER GROUP -> that key repository, initialised.
# A failed attempt leaves the repository half made (keys are skipped once "0"
# exists): it is emptied and the setup tried again, up to three times.
key_setup() {
  local repo="$1" user="$2" group="$3" dir="$STATE_DIR/$1-keys" attempt
  for attempt in 1 2 3; do
    if MANAGE_QUIET=1 manage "${repo}_setup" --keystone-user "$user" --keystone-group "$group" \
        && [ -s "$dir/0" ] && [ -s "$dir/1" ]; then
      return 0
    fi
    log "keystone-manage ${repo}_setup: attempt $attempt failed; retrying"
    find "$dir" -mindepth 1 -delete
    sleep 1
  done
  echo "keystone.sh: keystone-manage ${repo}_setup failed 3 times; last lines of $STATE_DIR/logs/keystone-manage-${repo}_setup.log:" >&2
  tail -n 30 "$STATE_DIR/logs/keystone-manage-${repo}_setup.log" >&2
  exit 1
}

# The demo project, its member user, the service user: made (or found) through the API.
make_accounts() {
  local url="$1" out="$2"
  NIP_KS_URL="$url" NIP_KS_OUT="$out" "$VENV/bin/python" - <<'PY'
import json, os, urllib.error, urllib.request

url = os.environ["NIP_KS_URL"]
env = {}
with open(os.environ["NIP_KS_OUT"]) as f:
    for line in f:
        k, _, v = line.strip().partition("=")
        env[k] = v.strip("'")

def call(method, path, body=None, token=None, ok=(200, 201, 204)):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url + path, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("X-Auth-Token", token)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            raw = r.read()
            return r.status, r.headers, (json.loads(raw) if raw else None)
    except urllib.error.HTTPError as e:
        if e.code in ok:
            return e.code, e.headers, None
        raise SystemExit(f"keystone.sh: {method} {path}: {e.code} {e.read()[:300]!r}")

_, headers, _ = call("POST", "/auth/tokens", {"auth": {
    "identity": {"methods": ["password"], "password": {"user": {
        "name": env["NIP_KEYSTONE_ADMIN_USER"], "domain": {"id": "default"},
        "password": env["NIP_KEYSTONE_ADMIN_PASSWORD"]}}},
    "scope": {"project": {"name": env["NIP_KEYSTONE_ADMIN_PROJECT"], "domain": {"id": "default"}}}}})
admin = headers["X-Subject-Token"]

def find(kind, name, extra=""):
    _, _, body = call("GET", f"/{kind}?name={name}{extra}", token=admin)
    items = body[kind]
    return items[0]["id"] if items else None

def ensure(kind, name, body):
    found = find(kind, name, "&domain_id=default" if kind != "roles" else "")
    if found:
        return found
    _, _, made = call("POST", f"/{kind}", {kind[:-1]: body}, token=admin)
    return made[kind[:-1]]["id"]

def can_log_in(uid, password):
    status, _, _ = call("POST", "/auth/tokens", {"auth": {"identity": {"methods": ["password"],
                        "password": {"user": {"id": uid, "password": password}}}}}, ok=(401,))
    return status == 201

def user(name, password, project):
    uid = ensure("users", name, {"name": name, "domain_id": "default", "password": password,
                                 "default_project_id": project, "enabled": True})
    # Reset the password only when it is not the one on file: a change revokes
    # the user's tokens.
    if not can_log_in(uid, password):
        call("PATCH", f"/users/{uid}", {"user": {"password": password}}, token=admin)
    return uid

def grant(project, uid, role):
    call("PUT", f"/projects/{project}/users/{uid}/roles/{role}", token=admin)

roles = {r: find("roles", r) for r in ("admin", "member", "reader")}
roles["service"] = ensure("roles", "service", {"name": "service"})
admin_project = find("projects", env["NIP_KEYSTONE_ADMIN_PROJECT"], "&domain_id=default")
admin_user = find("users", env["NIP_KEYSTONE_ADMIN_USER"], "&domain_id=default")
demo = ensure("projects", "demo", {"name": "demo", "domain_id": "default", "description": "nova-images-proxy tests"})
service = ensure("projects", "service", {"name": "service", "domain_id": "default"})
member = user("member", env["NIP_KEYSTONE_MEMBER_PASSWORD"], demo)
grant(demo, member, roles["member"])
# For the policy matrix: a member of another project, and a reader of demo
# (Keystone's bootstrap makes admin imply member and member imply reader).
other = ensure("projects", "other", {"name": "other", "domain_id": "default", "description": "nova-images-proxy tests"})
other_user = user("other", env["NIP_KEYSTONE_OTHER_PASSWORD"], other)
grant(other, other_user, roles["member"])
reader = user("reader", env["NIP_KEYSTONE_READER_PASSWORD"], demo)
grant(demo, reader, roles["reader"])
svc = user("nova-images-proxy", env["NIP_KEYSTONE_SERVICE_PASSWORD"], service)
# keystone's policy lets the `service` role validate any token (service_admin_or_token_subject)
grant(service, svc, roles["service"])

with open(os.environ["NIP_KS_OUT"], "a") as f:
    for k, v in (("ADMIN_USER_ID", admin_user), ("ADMIN_PROJECT_ID", admin_project),
                 ("DEMO_PROJECT", "demo"), ("DEMO_PROJECT_ID", demo),
                 ("MEMBER_USER", "member"), ("MEMBER_USER_ID", member),
                 ("OTHER_PROJECT", "other"), ("OTHER_PROJECT_ID", other),
                 ("OTHER_USER", "other"), ("OTHER_USER_ID", other_user),
                 ("READER_USER", "reader"), ("READER_USER_ID", reader),
                 ("SERVICE_USER", "nova-images-proxy"), ("SERVICE_USER_ID", svc),
                 ("SERVICE_PROJECT", "service"), ("SERVICE_PROJECT_ID", service)):
        f.write(f"NIP_KEYSTONE_{k}='{v}'\n")
PY
}

random_password() { "$VENV/bin/python" -c 'import secrets; print(secrets.token_hex(16))'; }

cmd_start() {
  local port="" state="" fresh=0 workers=2
  while [ $# -gt 0 ]; do
    case "$1" in
      --port) [ $# -ge 2 ] || die "--port needs a value"; port="$2"; shift 2 ;;
      --port=*) port="${1#--port=}"; shift ;;
      --state) [ $# -ge 2 ] || die "--state needs a value"; state="$2"; shift 2 ;;
      --state=*) state="${1#--state=}"; shift ;;
      --workers) [ $# -ge 2 ] || die "--workers needs a value"; workers="$2"; shift 2 ;;
      --workers=*) workers="${1#--workers=}"; shift ;;
      --fresh) fresh=1; shift ;;
      *) die "unknown argument: $1" ;;
    esac
  done
  if ! [[ "$port" =~ ^[0-9]{1,5}$ ]] || [ "$port" -lt 1 ] || [ "$port" -gt 65535 ]; then
    die "--port PORT (1-65535) is required"
  fi
  [ -n "$state" ] || die "--state DIR is required"
  [[ "$workers" =~ ^[1-9][0-9]*$ ]] || die "--workers must be a positive integer"
  state="$(abs_dir "$state")"
  case "$state" in
    /|"$HOME"|/tmp|/root|/work|/usr|/etc|/var) die "refusing to use $state as a state dir" ;;
  esac
  venv_complete || die "Keystone $KEYSTONE_VERSION is not installed in $VENV; run: $PROG install"

  local t0; t0="$(now)"
  local marker="$state/.nip-keystone-state"
  if [ "$fresh" -eq 1 ]; then
    if stop_dir "$state"; then log "stopped the instance running from $state (pid $STOPPED_PID)"; fi
    if [ -d "$state" ] && [ -n "$(ls -A "$state")" ] && [ ! -e "$marker" ]; then
      die "$state is not empty and was not made by keystone.sh; refusing to wipe it"
    fi
    rm -rf "$state"
  fi

  local pid envfile="$state/keystone.env"
  if pid="$(running_pid "$state")"; then
    if [ "$(port_of "$state")" = "$port" ] && [ -s "$envfile" ]; then
      echo "keystone already up on http://$HOST:$port/v3 (pid $pid)" >&2
      cat "$envfile"
      return 0
    fi
    die "an instance (pid $pid) already runs from $state on port $(port_of "$state"); stop it first"
  fi
  port_in_use "$port" && die "something already listens on $HOST:$port"

  mkdir -p "$state"/{etc,logs,fernet-keys,receipt-keys,credential-keys,locks}
  chmod 700 "$state/fernet-keys" "$state/receipt-keys" "$state/credential-keys"
  : >"$marker"
  STATE_DIR="$state"
  write_config "$state" "$port" "$workers"

  # Passwords: kept for the life of the state dir.
  local pwfile="$state/passwords"
  if [ ! -s "$pwfile" ]; then
    (umask 077; {
      echo "NIP_KEYSTONE_ADMIN_PASSWORD='$(random_password)'"
      echo "NIP_KEYSTONE_MEMBER_PASSWORD='$(random_password)'"
      echo "NIP_KEYSTONE_SERVICE_PASSWORD='$(random_password)'"
    } >"$pwfile")
  fi
  local extra
  for extra in OTHER READER; do
    grep -q "^NIP_KEYSTONE_${extra}_PASSWORD=" "$pwfile" ||
      (umask 077; echo "NIP_KEYSTONE_${extra}_PASSWORD='$(random_password)'" >>"$pwfile")
  done
  local admin_pw
  admin_pw="$(sed -n "s/^NIP_KEYSTONE_ADMIN_PASSWORD='\(.*\)'$/\1/p" "$pwfile")"

  local url="http://$HOST:$port/v3" me group
  me="$(id -un)"; group="$(id -gn)"
  # One keystone-manage at a time: run side by side, the key setups have been seen to
  # lose their freshly written "0.tmp" key file (FileNotFoundError on the rename).
  manage db_sync
  local repo
  for repo in fernet receipt credential; do
    key_setup "$repo" "$me" "$group"
  done
  manage bootstrap --bootstrap-password "$admin_pw" \
    --bootstrap-username admin --bootstrap-project-name admin --bootstrap-role-name admin \
    --bootstrap-service-name keystone --bootstrap-region-id RegionOne \
    --bootstrap-admin-url "$url" --bootstrap-public-url "$url" --bootstrap-internal-url "$url"

  local alog="$state/logs/keystone.log"
  : >>"$alog"
  local logstart; logstart="$(wc -l <"$alog")"
  rm -f "$(pidfile_of "$state")"
  if ! "$VENV/bin/uwsgi" --ini "$state/etc/keystone-uwsgi.ini" >>"$alog" 2>&1; then
    echo "keystone.sh: uwsgi failed to start; last lines of $alog:" >&2
    tail -n 40 "$alog" >&2
    exit 1
  fi

  # Up = GET /v3 answers 200 and every worker has loaded the app (lazy-apps). If a
  # worker is still not ready 30 s after the first answer, go on anyway.
  local timeout="${NIP_KEYSTONE_TIMEOUT:-120}" deadline answered="" code ready ok=0
  deadline=$(( $(date +%s) + timeout ))
  while [ "$(date +%s)" -le "$deadline" ]; do
    code="$(curl --noproxy '*' -s -o /dev/null -w '%{http_code}' --max-time 2 "$url" || true)"
    if [ "$code" = 200 ]; then
      [ -n "$answered" ] || answered="$(date +%s)"
      ready="$(tail -n "+$((logstart + 1))" "$alog" | grep -c "^WSGI app 0 (mountpoint='') ready in" || true)"
      if [ "$ready" -ge "$workers" ] || [ $(( $(date +%s) - answered )) -ge 30 ]; then
        ok=1; break
      fi
    fi
    if [ -s "$(pidfile_of "$state")" ] && ! running_pid "$state" >/dev/null; then break; fi
    sleep 0.1
  done
  if [ "$ok" -ne 1 ] || ! pid="$(running_pid "$state")"; then
    echo "keystone.sh: keystone did not come up on $url; last lines of $alog:" >&2
    tail -n "+$((logstart + 1))" "$alog" | tail -n 40 >&2
    stop_dir "$state" || true
    exit 1
  fi

  local tmp="$envfile.tmp"
  (umask 077; {
    echo "NIP_KEYSTONE_URL='$url'"
    echo "NIP_KEYSTONE_DOMAIN='Default'"
    echo "NIP_KEYSTONE_REGION='RegionOne'"
    echo "NIP_KEYSTONE_ADMIN_USER='admin'"
    echo "NIP_KEYSTONE_ADMIN_PROJECT='admin'"
    cat "$pwfile"
  } >"$tmp")
  if ! make_accounts "$url" "$tmp"; then
    stop_dir "$state" || true
    die "could not create the demo project and users"
  fi
  mv "$tmp" "$envfile"
  echo "keystone up on $url (pid $pid) in $(elapsed "$t0")s; accounts in $envfile" >&2
  cat "$envfile"
}

# ---------------------------------------------------------------------------- main

[ $# -ge 1 ] || { usage >&2; exit 2; }
sub="$1"; shift
case "$sub" in
  install) cmd_install "$@" ;;
  start) cmd_start "$@" ;;
  stop) cmd_stop "$@" ;;
  status) cmd_status "$@" ;;
  -h|--help|help) usage ;;
  *) usage >&2; exit 2 ;;
esac
