"""The helper functions scripts call, for POSIX shells and Python.

Both read variables from the 0600 file named by `CEPHALO_VARIABLES_FILE` (names are
case-insensitive, as in Octopus) and talk back with `##cephalo[...]` service messages. The
shell helpers pipe values through `base64`, a builtin `printf` feeding it, so a value never
becomes an argument of a new process.
"""

from __future__ import annotations

SHELL_HELPERS = r"""
get_cephalovariable() {
  "$CEPHALO_PYTHON" -c '
import json, os, sys
values = json.load(open(os.environ["CEPHALO_VARIABLES_FILE"], encoding="utf-8"))
folded = {k.lower(): v for k, v in values.items()}
sys.stdout.write(folded.get(sys.argv[1].lower(), sys.argv[2] if len(sys.argv) > 2 else ""))
' "$1" ${2+"$2"}
}

__cephalo_b64() { printf '%s' "$1" | base64 | tr -d '\n'; }

set_cephalovariable() {
  __cephalo_flag=""
  case "${3:-}" in
    -sensitive|--sensitive|True|true) __cephalo_flag=" sensitive='VHJ1ZQ=='" ;;
  esac
  printf "##cephalo[setVariable name='%s' value='%s'%s]\n" \
    "$(__cephalo_b64 "$1")" "$(__cephalo_b64 "$2")" "$__cephalo_flag"
}

new_cephaloartifact() {
  case "$1" in /*) __cephalo_path="$1" ;; *) __cephalo_path="$PWD/$1" ;; esac
  printf "##cephalo[createArtifact path='%s' originalFilename='%s']\n" \
    "$(__cephalo_b64 "$__cephalo_path")" "$(__cephalo_b64 "${2:-$(basename "$1")}")"
}

fail_step() {
  printf "##cephalo[resultMessage message='%s']\n" "$(__cephalo_b64 "${1:-The script failed.}")"
  exit 1
}

get_octopusvariable() { get_cephalovariable "$@"; }
set_octopusvariable() { set_cephalovariable "$@"; }
new_octopusartifact() { new_cephaloartifact "$@"; }
"""

SHELL_BOOTSTRAP = r""". "$CEPHALO_HELPERS"
__cephalo_script="$1"
shift
. "$__cephalo_script"
"""

PYTHON_BOOTSTRAP = r'''"""Runs a step's Python script with the Cephalo helper functions as globals."""
import base64
import json
import os
import runpy
import sys


def _b64(text):
    return base64.b64encode(str(text).encode("utf-8")).decode("ascii")


def get_cephalovariable(name, default=None):
    with open(os.environ["CEPHALO_VARIABLES_FILE"], encoding="utf-8") as handle:
        values = json.load(handle)
    folded = {key.lower(): value for key, value in values.items()}
    return folded.get(name.lower(), default)


def set_cephalovariable(name, value, sensitive=False):
    flag = " sensitive='VHJ1ZQ=='" if sensitive else ""
    print(f"##cephalo[setVariable name='{_b64(name)}' value='{_b64(value)}'{flag}]", flush=True)


def new_cephaloartifact(path, name=None):
    path = os.path.abspath(path)
    name = name or os.path.basename(path)
    print(f"##cephalo[createArtifact path='{_b64(path)}' originalFilename='{_b64(name)}']",
          flush=True)


def fail_step(message="The script failed."):
    print(f"##cephalo[resultMessage message='{_b64(message)}']", flush=True)
    sys.exit(1)


HELPERS = {
    "get_cephalovariable": get_cephalovariable,
    "set_cephalovariable": set_cephalovariable,
    "new_cephaloartifact": new_cephaloartifact,
    "fail_step": fail_step,
    "get_octopusvariable": get_cephalovariable,
    "set_octopusvariable": set_cephalovariable,
    "new_octopusartifact": new_cephaloartifact,
}

if __name__ == "__main__":
    script = sys.argv[1]
    sys.argv = sys.argv[1:]
    sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
    runpy.run_path(script, init_globals=HELPERS, run_name="__main__")
'''
