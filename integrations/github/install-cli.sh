#!/usr/bin/env bash
# Make `cephalo` available to the following steps: keep one already on PATH, else pip-install
# CLI_SOURCE (a requirement: a version, a wheel URL or git+https://…#subdirectory=cli).
set -euo pipefail
if command -v cephalo >/dev/null 2>&1; then
  cephalo --cli-version
  exit 0
fi
python3 -m pip install --user --quiet --disable-pip-version-check "${CLI_SOURCE:-cephalo-cli}"
bin="$(python3 -m site --user-base)/bin"
echo "$bin" >> "${GITHUB_PATH:-/dev/null}"
"$bin/cephalo" --cli-version
