#!/usr/bin/env bash
# Installs the Debian packages listed in packages.txt that are missing, at the
# pinned version where the archive still has it. Debian replaces a version
# when it ships a security fix; then the script installs the archive's
# current version of that package and says so, rather than failing the build.
# Needs root or sudo only when something is missing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
missing=()
while read -r spec _; do
  [[ -z "$spec" || "$spec" == \#* ]] && continue
  name=${spec%%=*}
  status=$(dpkg-query -W -f='${Status}' "$name" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$spec")
done <"$here/packages.txt"
command -v npm >/dev/null || missing+=("npm")
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
echo "debian/install.sh: installing ${missing[*]}" >&2
$sudo apt-get update -qq
pinned=()
for spec in "${missing[@]}"; do
  name=${spec%%=*}
  want=${spec#*=}
  if [ "$name" != "$spec" ] && ! apt-cache madison "$name" | awk -F'|' '{gsub(/ /,"",$2); print $2}' | grep -qxF "$want"; then
    echo "debian/install.sh: $name=$want is no longer in the archive; installing its current version" >&2
    spec=$name
  fi
  pinned+=("$spec")
done
$sudo apt-get install -y -qq --no-install-recommends "${pinned[@]}" >/dev/null
