#!/usr/bin/env bash
# Fetches ONNX Runtime 1.29.0's CUDA 13 execution provider
# (libonnxruntime_providers_cuda.so, ~230 MB) from the npm package
# com.github.asus4.onnxruntime.linux-x64-gpu@0.4.9, the sibling of the core
# package fetch.sh installs (one build, so the plugin matches the core
# library), checks pinned SHA-256 sums and installs it beside
# libonnxruntime.so, where salt-ort looks for it (device = "cuda").
#
# Not part of `make deps`: CI has no GPU. The provider needs CUDA 13,
# cuBLAS and cuRAND at run time (see ../shared/gpu/README.md).
#
# usage: third_party/onnxruntime/fetch-cuda.sh   (idempotent)
set -euo pipefail

pkg=com.github.asus4.onnxruntime.linux-x64-gpu
ver=0.4.9
tgz_sha=2b459e0c17f340c92970c10ed86de4f37a3009f93c14053e6ad4334cbb6be412
lib_sha=56cf3254b118ad837ccc4ed8f6d1b23504bbf7ef91b34cbc0b289cb7f10b3037
member=package/Plugins/Linux/x64/libonnxruntime_providers_cuda.so

here=$(cd "$(dirname "$0")" && pwd)
dest=$here/dist/lib/libonnxruntime_providers_cuda.so
[ -d "$here/dist/lib" ] || { echo "fetch-cuda.sh: install the core library first (make deps)" >&2; exit 1; }
if [ -f "$dest" ] && echo "$lib_sha  $dest" | sha256sum -c --status; then
  exit 0
fi
command -v npm >/dev/null || { echo "fetch-cuda.sh: npm is needed (apt-get install npm)" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "fetch-cuda.sh: npm pack $pkg@$ver (~180 MB)" >&2
(cd "$tmp" && npm pack --silent "$pkg@$ver" >/dev/null)
tgz=$tmp/$pkg-$ver.tgz
echo "$tgz_sha  $tgz" | sha256sum -c --status ||
  { echo "fetch-cuda.sh: checksum mismatch for $tgz: got $(sha256sum "$tgz" | cut -d' ' -f1), want $tgz_sha" >&2; exit 1; }
tar xzf "$tgz" -C "$tmp" "$member"
echo "$lib_sha  $tmp/$member" | sha256sum -c --status ||
  { echo "fetch-cuda.sh: checksum mismatch for libonnxruntime_providers_cuda.so" >&2; exit 1; }
cp "$tmp/$member" "$dest.new"
mv "$dest.new" "$dest"
echo "fetch-cuda.sh: installed $dest" >&2
