#!/usr/bin/env bash
# Make nginx available for the multi-node test (idempotent): installs the Debian package if needed.
# The test writes its own configuration into a temporary folder and runs nginx in the foreground
# (`nginx -p DIR -c DIR/nginx.conf`), so no system service is started or configured here.
set -euo pipefail
command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] && exit 0
echo "nginx.sh: nginx not found; installing it with apt-get" >&2
sudo=()
[[ $(id -u) -ne 0 ]] && sudo=(sudo)
if ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y nginx >&2; then
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update >&2
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y nginx >&2
fi
