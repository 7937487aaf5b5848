#!/bin/sh
# nginx for bench_feed.py's download comparison, installed from Debian when missing (root only).
# Debian's package would start its default site on port 80; a temporary policy-rc.d stops that.
set -eu
if command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; then
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "nginx is missing and only root may install it; the bench runs without the nginx row" >&2
    exit 0
fi
policy=/usr/sbin/policy-rc.d
created=""
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod +x "$policy"
    created=1
fi
trap '[ -z "$created" ] || rm -f "$policy"' EXIT
export DEBIAN_FRONTEND=noninteractive
apt-get install -y --no-install-recommends nginx ||
    { apt-get update && apt-get install -y --no-install-recommends nginx; }
