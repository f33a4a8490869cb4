# Sourced by the scripts that keep one Python client in a cached venv
# (scripts/glanceclient-v1.sh, scripts/novaclient.sh).
#
#   client_venv_install VENV PACKAGE VERSION CHECK
#
# Creates or updates VENV with PACKAGE==VERSION unless it already holds that
# version and the Python code CHECK runs in it; one installer at a time
# (flock). Prints the venv's python on stdout, everything else on stderr.

client_venv_ok() {
  local venv="$1" package="$2" version="$3" check="$4"
  [ -x "$venv/bin/python" ] || return 1
  "$venv/bin/python" - "$package" "$version" >/dev/null 2>&1 <<PY
import importlib.metadata as m, sys
assert m.version(sys.argv[1]) == sys.argv[2]
$check
PY
}

client_venv_install() {
  local venv="$1" package="$2" version="$3" check="$4" name
  name="$(basename "$0")"
  mkdir -p "$(dirname "$venv")"
  exec 9>"$venv.lock"
  flock 9
  if client_venv_ok "$@"; then
    echo "$venv/bin/python"
    return
  fi
  echo "$name: installing $package==$version into $venv" >&2
  [ -x "$venv/bin/python" ] || "${NIP_PYTHON:-python3}" -m venv "$venv" >&2 \
    || { echo "$name: cannot create the venv $venv" >&2; return 1; }
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$package==$version" >&2 \
    || { echo "$name: pip install $package==$version failed" >&2; return 1; }
  client_venv_ok "$@" || { echo "$name: $package $version in $venv does not pass its check" >&2; return 1; }
  echo "$name: $package $version ready in $venv" >&2
  echo "$venv/bin/python"
}
