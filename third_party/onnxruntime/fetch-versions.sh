#!/usr/bin/env bash
# Fetches the CPU libraries of further ONNX Runtime releases, against which
# `salt-ort validate --ort VERSION` runs a model's validation vectors, from
# the npm package onnxruntime-node (which ships libonnxruntime.so for linux
# x64 beside its Node.js binding), checks each tarball and library against
# the SHA-256 sums pinned below and installs the library alone as
# third_party/onnxruntime/versions/VERSION/libonnxruntime.so (ignored by git).
#
# usage: third_party/onnxruntime/fetch-versions.sh [VERSION...]
#   no VERSION: DEFAULT below, every release `salt-ort validate` runs
#   when no --ort is given and the tests use. Idempotent.
#
# Download sizes (the tarballs carry every platform's binaries; only the
# linux x64 library is kept): 1.14.0 31 MB, 1.17.3 52 MB, 1.23.2 97 MB,
# 1.31.1 115 MB: 295 MB once for the four.
set -euo pipefail

DEFAULT="1.14.0 1.17.3 1.23.2 1.31.1"

# version  tarball SHA-256  path of the linux x64 library in the tarball  library SHA-256
pins() {
  cat <<'PINS'
1.14.0 aca88b04a478f9c09e3f9d80294ae315e4e654ca92e60dda0dec805c4a3b84c5 package/bin/napi-v3/linux/x64/libonnxruntime.so.1.14.0 535abc9e9908093b0e2fbb621db6d9a66b36d477288c3d75085fda171233d214
1.17.3 fd586d4ab53d89fdade19ffcc75b208fd66ab417b247cb6ae299be1bb40d76be package/bin/napi-v3/linux/x64/libonnxruntime.so.1.17.3 f96ba39c4021546992807e596c5be53a73b3683fe5dc89c43ffb4769bffeea3f
1.23.2 fe70e8de46560c57c2dfb7170770da32dbb21684504a5c904346c44a56e154f2 package/bin/napi-v6/linux/x64/libonnxruntime.so.1 733854c3d7ce45256cc1c22cd4a30373247e1f7b7de8f40beab24211ef8e2a76
1.31.1 d7a3de2b1bba92614abc74af909cc0ba4f4dd5347735418794edeb58cfef2d22 package/bin/napi-v6/linux/x64/libonnxruntime.so.1 f19a4da48c4c65e0cdccff82354482f657fa91a3455b66174195b94ca55b0e6f
PINS
}

here=$(cd "$(dirname "$0")" && pwd)
root=$here/versions

fetch() {
  local v=$1 line tgz_sha path lib_sha dest tmp tgz
  line=$(pins | awk -v v="$v" '$1 == v')
  if [ -z "$line" ]; then
    echo "fetch-versions.sh: ONNX Runtime $v has no pinned checksum; pinned: $(pins | awk '{printf "%s ", $1}')(add its line to pins in $0)" >&2
    return 1
  fi
  read -r _ tgz_sha path lib_sha <<<"$line"
  dest=$root/$v
  if echo "$lib_sha  $dest/libonnxruntime.so" | sha256sum -c --status 2>/dev/null; then
    return 0
  fi
  command -v npm >/dev/null || { echo "fetch-versions.sh: npm is needed to fetch ONNX Runtime (apt-get install npm)" >&2; return 1; }
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' RETURN
  echo "fetch-versions.sh: npm pack onnxruntime-node@$v" >&2
  (cd "$tmp" && npm pack --silent "onnxruntime-node@$v" >/dev/null)
  tgz=$tmp/onnxruntime-node-$v.tgz
  echo "$tgz_sha  $tgz" | sha256sum -c --status ||
    { echo "fetch-versions.sh: checksum mismatch for $tgz: got $(sha256sum "$tgz" | cut -d' ' -f1), want $tgz_sha" >&2; return 1; }
  tar xzf "$tgz" -C "$tmp" "$path"
  echo "$lib_sha  $tmp/$path" | sha256sum -c --status ||
    { echo "fetch-versions.sh: checksum mismatch for $path of onnxruntime-node@$v" >&2; return 1; }
  rm -rf "$dest.new"
  mkdir -p "$dest.new"
  cp "$tmp/$path" "$dest.new/libonnxruntime.so"
  rm -rf "$dest"
  mv "$dest.new" "$dest"
  echo "fetch-versions.sh: installed ONNX Runtime $v in $dest" >&2
}

versions=("$@")
[ ${#versions[@]} -gt 0 ] || read -r -a versions <<<"$DEFAULT"
for v in "${versions[@]}"; do
  fetch "$v"
done
