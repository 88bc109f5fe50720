#!/usr/bin/env bash
# Fetches ONNX Runtime 1.29.0 (CPU core library and its C/C++ headers) from the
# npm package com.github.asus4.onnxruntime@0.4.9, checks it against pinned
# SHA-256 sums and installs it under third_party/onnxruntime/dist/ (ignored by git).
#
# Why this package: the official onnxruntime npm package carries a CPU-only
# library without headers, and ONNX Runtime's CUDA provider (see
# ../shared/gpu/README.md) must match the core build exactly; this package
# and its linux-x64-gpu sibling come from one build.
#
# usage: third_party/onnxruntime/fetch.sh   (idempotent; does nothing when installed)
set -euo pipefail

pkg=com.github.asus4.onnxruntime
ver=0.4.9
ort_version=1.29.0
tgz_sha=e59788788818fdde1b2e522e766a21ba0f7d8391de55737abf81e32cc801785d
lib_sha=5715f06d8992ca8eeeddcce43df3a7d38f97d537052126f558e912cb312460ca
headers='package/Plugins/iOS~/onnxruntime.xcframework/ios-arm64/onnxruntime.framework/Headers'

here=$(cd "$(dirname "$0")" && pwd)
dist=$here/dist
stamp=$dist/VERSION

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$ort_version $lib_sha" ] &&
  echo "$lib_sha  $dist/lib/libonnxruntime.so" | sha256sum -c --status; then
  exit 0
fi

command -v npm >/dev/null || { echo "fetch.sh: npm is needed to fetch ONNX Runtime (apt-get install npm)" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "fetch.sh: npm pack $pkg@$ver (ONNX Runtime $ort_version, ~150 MB)" >&2
(cd "$tmp" && npm pack --silent "$pkg@$ver" >/dev/null)
tgz=$tmp/$pkg-$ver.tgz
echo "$tgz_sha  $tgz" | sha256sum -c --status ||
  { echo "fetch.sh: checksum mismatch for $tgz: got $(sha256sum "$tgz" | cut -d' ' -f1), want $tgz_sha" >&2; exit 1; }
tar xzf "$tgz" -C "$tmp" package/Plugins/Linux/x64/libonnxruntime.so "$headers"
lib=$tmp/package/Plugins/Linux/x64/libonnxruntime.so
echo "$lib_sha  $lib" | sha256sum -c --status ||
  { echo "fetch.sh: checksum mismatch for libonnxruntime.so" >&2; exit 1; }

rm -rf "$dist.new"
mkdir -p "$dist.new/lib" "$dist.new/include"
cp "$lib" "$dist.new/lib/libonnxruntime.so"
ln -s libonnxruntime.so "$dist.new/lib/libonnxruntime.so.1"
cp "$tmp/$headers"/*.h "$dist.new/include/"
echo "$ort_version $lib_sha" >"$dist.new/VERSION"
rm -rf "$dist"
mv "$dist.new" "$dist"
echo "fetch.sh: installed ONNX Runtime $ort_version in $dist" >&2
