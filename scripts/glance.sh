#!/usr/bin/env bash
# Install and run a real OpenStack Glance (API v2, from PyPI) on loopback for the
# integration tests of nova-images-proxy.
#
#   scripts/glance.sh install
#   scripts/glance.sh start  --port PORT --state DIR [--fresh] [--workers N] [--keystone ENVFILE]
#   scripts/glance.sh stop   --state DIR
#   scripts/glance.sh status --state DIR
#
# Glance runs without Keystone (paste flavor "" -> pipeline with unauthenticated-context),
# on sqlite + the file store under DIR, served by uwsgi bound to 127.0.0.1:PORT only.
# Any X-Auth-Token (or none) is accepted; every request runs as an admin context.
# With --keystone ENVFILE (the keystone.env that scripts/keystone.sh writes) Glance runs
# behind keystonemiddleware instead (paste flavor "keystone", its service user
# validating tokens) with its stock default policy: Glance as a cloud runs it.
#
# Environment:
#   NIP_GLANCE_VENV     venv to create/use (default: $HOME/.cache/nova-images-proxy/glance-venv)
#   NIP_GLANCE_VERSION  glance version to install (default: 33.0.0)
#   NIP_PYTHON          interpreter used to create the venv (default: python3)
#   NIP_GLANCE_DEBUG    "true" turns on Glance's debug logging (default: false)
#   NIP_GLANCE_TIMEOUT  seconds `start` waits for GET /versions (default: 120)
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PROG="${SCRIPT_DIR}/$(basename "${BASH_SOURCE[0]}")"

VENV="${NIP_GLANCE_VENV:-$HOME/.cache/nova-images-proxy/glance-venv}"
GLANCE_VERSION="${NIP_GLANCE_VERSION:-33.0.0}"
PYTHON="${NIP_PYTHON:-python3}"
HOST=127.0.0.1

# Nothing this script talks to is behind a proxy: keep every request on loopback.
export NO_PROXY='*' no_proxy='*'

die() { echo "glance.sh: $*" >&2; exit 1; }
log() { echo "glance.sh: $*" >&2; }

usage() {
  sed -n '2,19p' "$PROG" | sed 's/^# \{0,1\}//'
}

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# ---------------------------------------------------------------------------- install

installed_glance_version() {
  [ -x "$VENV/bin/python" ] || return 0
  "$VENV/bin/python" - <<'PY' 2>/dev/null || true
import importlib.metadata as m
print(m.version("glance"))
PY
}

venv_has_glance() {  # cheap check used by start
  [ "$(installed_glance_version)" = "$GLANCE_VERSION" ] || return 1
  [ -x "$VENV/bin/uwsgi" ] && [ -x "$VENV/bin/glance-manage" ]
}

venv_complete() {
  venv_has_glance || return 1
  "$VENV/bin/python" - >/dev/null 2>&1 <<'PY'
import importlib.metadata as m
for dist in ("python-glanceclient", "openstacksdk", "uWSGI"):
    m.version(dist)
PY
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
    log "pip install glance==$GLANCE_VERSION uwsgi python-glanceclient openstacksdk into $VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip setuptools wheel
    "$VENV/bin/python" -m pip install -q \
      "glance==$GLANCE_VERSION" uwsgi python-glanceclient openstacksdk
    "$VENV/bin/python" -m pip freeze >"$VENV/freeze.txt"
    venv_complete || die "venv $VENV is still incomplete after pip install"
    action="installed"
  fi
  flock -u 9
  exec 9>&-

  local uwsgi_v
  uwsgi_v="$("$VENV/bin/uwsgi" --version 2>/dev/null || echo '?')"
  echo "glance $(installed_glance_version) + uwsgi $uwsgi_v $action in $VENV ($(elapsed "$t0")s)"
}

# ---------------------------------------------------------------------------- helpers

abs_dir() {  # abs_dir DIR -> absolute path (DIR need not exist)
  local d="$1"
  case "$d" in /*) ;; *) d="$PWD/$d" ;; esac
  # strip trailing slashes (but keep "/")
  while [ "${#d}" -gt 1 ] && [ "${d%/}" != "$d" ]; do d="${d%/}"; done
  printf '%s\n' "$d"
}

pidfile_of() { printf '%s/glance-api.pid\n' "$1"; }

# running_pid DIR -> prints the uwsgi master pid of DIR's instance, if it is alive
running_pid() {
  local pidf pid
  pidf="$(pidfile_of "$1")"
  [ -s "$pidf" ] || return 1
  pid="$(tr -dc '0-9' <"$pidf")"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  # guard against a recycled pid: it must be the uwsgi serving this state dir
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$1/etc/glance-uwsgi.ini" || return 1
  printf '%s\n' "$pid"
}

port_of() { sed -n 's/^http-socket = .*:\([0-9][0-9]*\)$/\1/p' "$1/etc/glance-uwsgi.ini" 2>/dev/null; }

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
stop_dir() {  # stop_dir DIR -> stops DIR's instance; returns 1 (and sets nothing) if none ran
  local dir="$1" pid pids p i alive=""
  STOPPED_PID=""
  if ! pid="$(running_pid "$dir")"; then
    rm -f "$(pidfile_of "$dir")"
    return 1
  fi
  pids="$pid $(descendants "$pid" | tr '\n' ' ')"
  # SIGINT: the uwsgi master signals its workers, reaps them and exits (normally < 2 s).
  # A worker caught in the middle of importing Glance can hang: SIGKILL what is left of
  # the workers after 5 s (the master then exits), and the master itself after 10 s.
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
    echo "glance stopped (pid $STOPPED_PID, state $STATE)"
  else
    echo "glance not running (state $STATE)"
  fi
}

cmd_status() {
  parse_state_only "$@"
  local pid port
  if pid="$(running_pid "$STATE")"; then
    port="$(port_of "$STATE")"
    if curl --noproxy '*' -sf -o /dev/null --max-time 5 "http://$HOST:$port/versions"; then
      echo "glance running on http://$HOST:$port (pid $pid, state $STATE)"
    else
      echo "glance process running but not answering on http://$HOST:$port (pid $pid, state $STATE)"
      return 1
    fi
  else
    echo "glance not running (state $STATE)"
    return 3
  fi
}

# ---------------------------------------------------------------------------- start

write_config() {
  local dir="$1" port="$2" workers="$3" ksenv="${4:-}"
  local etc="$dir/etc" logs="$dir/logs"

  # Stock paste file of the installed Glance; only the healthcheck's disable file moves
  # into DIR. The stock "default" pipeline (flavor "") has no keystone:
  # cors http_proxy_to_wsgi versionnegotiation osprofiler unauthenticated-context rootapp
  local paste_src="$VENV/etc/glance/glance-api-paste.ini"
  [ -f "$paste_src" ] || die "$paste_src not found; run: $PROG install"
  sed "s#^disable_by_file_path = .*#disable_by_file_path = $dir/healthcheck_disable#" \
    "$paste_src" >"$etc/glance-api-paste.ini"

  # unauthenticated-context gives every request is_admin=True but no roles; Glance's
  # role-based default policies test "rule:context_is_admin" (= role:admin) and would
  # answer 403 to everything. Make the rule match that context.
  # Behind Keystone the stock default policy applies unchanged.
  local flavor="" authtoken=""
  if [ -n "$ksenv" ]; then
    echo "{}" >"$etc/glance-policy.yaml"
    flavor=keystone
    authtoken="$(keystone_authtoken "$ksenv")"
  else
    cat >"$etc/glance-policy.yaml" <<'EOF'
"context_is_admin": ""
EOF
  fi

  cat >"$etc/glance-api.conf" <<EOF
# Written by scripts/glance.sh; regenerated on every start.
[DEFAULT]
debug = ${NIP_GLANCE_DEBUG:-false}
use_stderr = true
show_image_direct_url = false
show_multiple_locations = false
image_cache_dir = $dir/cache
node_staging_uri = file://$dir/staging
enabled_import_methods = [glance-direct,web-download]

[database]
connection = sqlite:///$dir/glance.sqlite

[glance_store]
stores = file,http
default_store = file
filesystem_store_datadir = $dir/images/

[os_glance_staging_store]
filesystem_store_datadir = $dir/staging/

[os_glance_tasks_store]
filesystem_store_datadir = $dir/tasks/

[paste_deploy]
# empty flavor = the "default" pipeline (no keystone); "keystone" = authtoken + context
flavor = $flavor
config_file = $etc/glance-api-paste.ini

$authtoken

[oslo_concurrency]
lock_path = $dir/locks

[oslo_policy]
policy_file = $etc/glance-policy.yaml

[wsgi]
task_pool_threads = 4
EOF

  cat >"$etc/glance-uwsgi.ini" <<EOF
; Written by scripts/glance.sh; regenerated on every start.
[uwsgi]
module = glance.wsgi.api:application
virtualenv = $VENV
env = OS_GLANCE_CONFIG_DIR=$etc
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
; image uploads with Transfer-Encoding: chunked
http-auto-chunked = true
http-raw-body = true
chunked-input-limit = 10485760
pidfile = $dir/glance-api.pid
vacuum = true
daemonize = $logs/glance-api.log
EOF
}

# The [keystone_authtoken] section for the accounts in keystone.sh's env file.
keystone_authtoken() {
  local envfile="$1"
  [ -s "$envfile" ] || die "--keystone $envfile: no such keystone.env"
  (
    set -a
    # shellcheck source=/dev/null
    . "$envfile"
    cat <<EOF
[keystone_authtoken]
www_authenticate_uri = ${NIP_KEYSTONE_URL%/v3}
auth_url = ${NIP_KEYSTONE_URL%/v3}
auth_type = password
username = $NIP_KEYSTONE_SERVICE_USER
password = $NIP_KEYSTONE_SERVICE_PASSWORD
project_name = $NIP_KEYSTONE_SERVICE_PROJECT
user_domain_id = default
project_domain_id = default
EOF
  )
}

cmd_start() {
  local port="" state="" fresh=0 workers=2 ksenv=""
  while [ $# -gt 0 ]; do
    case "$1" in
      --keystone) [ $# -ge 2 ] || die "--keystone needs a value"; ksenv="$(cd "$(dirname "$2")" && pwd)/$(basename "$2")"; shift 2 ;;
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
  venv_has_glance || die "Glance $GLANCE_VERSION is not installed in $VENV; run: $PROG install"

  local t0; t0="$(now)"
  local marker="$state/.nip-glance-state"
  if [ "$fresh" -eq 1 ]; then
    if stop_dir "$state"; then log "stopped the instance running from $state (pid $STOPPED_PID)"; fi
    if [ -d "$state" ] && [ -n "$(ls -A "$state")" ] && [ ! -e "$marker" ]; then
      die "$state is not empty and was not made by glance.sh; refusing to wipe it"
    fi
    rm -rf "$state"
  fi

  local pid
  if pid="$(running_pid "$state")"; then
    if [ "$(port_of "$state")" = "$port" ]; then
      echo "glance already up on http://$HOST:$port (pid $pid)"
      return 0
    fi
    die "an instance (pid $pid) already runs from $state on port $(port_of "$state"); stop it first"
  fi
  port_in_use "$port" && die "something already listens on $HOST:$port"

  mkdir -p "$state"/{etc,logs,images,staging,tasks,cache,locks}
  : >"$marker"
  write_config "$state" "$port" "$workers" "$ksenv"

  # Schema (idempotent: runs only the missing migrations).
  local mlog="$state/logs/glance-manage.log"
  if ! "$VENV/bin/glance-manage" --config-file "$state/etc/glance-api.conf" db_sync >>"$mlog" 2>&1; then
    echo "glance.sh: glance-manage db_sync failed; last lines of $mlog:" >&2
    tail -n 30 "$mlog" >&2
    exit 1
  fi

  local alog="$state/logs/glance-api.log"
  : >>"$alog"
  local logstart; logstart="$(wc -l <"$alog")"
  rm -f "$(pidfile_of "$state")"
  if ! "$VENV/bin/uwsgi" --ini "$state/etc/glance-uwsgi.ini" >>"$alog" 2>&1; then
    echo "glance.sh: uwsgi failed to start; last lines of $alog:" >&2
    tail -n 40 "$alog" >&2
    exit 1
  fi

  # Up = GET /versions answers 200 and every worker has loaded the app (lazy-apps: each
  # worker imports Glance itself, ~2 s of CPU each; waiting keeps that out of the tests
  # and avoids stopping a worker in the middle of its imports). If a worker is still
  # not ready 30 s after the first answer, go on anyway.
  local timeout="${NIP_GLANCE_TIMEOUT:-120}" deadline answered="" code ready ok=0
  deadline=$(( $(date +%s) + timeout ))
  while [ "$(date +%s)" -le "$deadline" ]; do
    code="$(curl --noproxy '*' -s -o /dev/null -w '%{http_code}' --max-time 2 \
      "http://$HOST:$port/versions" || true)"
    if [ "$code" = 200 ]; then
      [ -n "$answered" ] || answered="$(date +%s)"
      ready="$(tail -n "+$((logstart + 1))" "$alog" | grep -c "^WSGI app 0 (mountpoint='') ready in" || true)"
      if [ "$ready" -ge "$workers" ] || [ $(( $(date +%s) - answered )) -ge 30 ]; then
        ok=1; break
      fi
    fi
    # fail fast once the master has written its pid file and then died
    if [ -s "$(pidfile_of "$state")" ] && ! running_pid "$state" >/dev/null; then break; fi
    sleep 0.1
  done
  if [ "$ok" -ne 1 ] || ! pid="$(running_pid "$state")"; then
    echo "glance.sh: glance did not come up on http://$HOST:$port; last lines of $alog:" >&2
    tail -n "+$((logstart + 1))" "$alog" | tail -n 40 >&2
    stop_dir "$state" || true
    exit 1
  fi
  echo "glance up on http://$HOST:$port (pid $pid) in $(elapsed "$t0")s"
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
