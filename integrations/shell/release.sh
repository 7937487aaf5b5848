#!/usr/bin/env bash
# Push packages, create a release and deploy it, from any build server with bash and Python.
#
#   CEPHALO_SERVER=https://cephalo.example.com CEPHALO_API_KEY=API-… \
#     ./release.sh HelloWorld 1.4.0 Staging dist/Acme.Web.1.4.0.zip dist/Acme.Db.1.4.0.zip
#
# Exit code: the CLI's (0 deployed, 1 the deployment failed, 2 usage, 3 server or key).
set -euo pipefail

if [ $# -lt 3 ]; then
  echo "usage: $0 PROJECT VERSION ENVIRONMENT [PACKAGE_FILE...]" >&2
  exit 2
fi
project=$1 version=$2 environment=$3
shift 3

command -v cephalo >/dev/null 2>&1 || python3 -m pip install --quiet "${CEPHALO_CLI_SOURCE:-cephalo-cli}"

if [ $# -gt 0 ]; then
  cephalo package push "$@" --overwrite-mode IgnoreIfExists
fi
cephalo release create --project "$project" --version "$version" --ignore-existing
cephalo release deploy --project "$project" --version "$version" --to "$environment" --wait --timeout "${CEPHALO_TIMEOUT:-600}"
