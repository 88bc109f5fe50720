#!/usr/bin/env bash
# Packs what the GPU device machine needs to run scripts/gpu/check.sh, in
# .gpu/bundle (ignored by git, carried by the device call): the salt-ort
# binary, libonnxruntime.so, the shared libraries of the binary that Ubuntu
# lacks (HDF5 and its dependencies), and ../shared/reference/gn2_reference.py.
# The CUDA provider travels separately (../shared/gpu/stage-ort-cuda, three
# calls, to /tmp/ort on the device).
#
# usage: scripts/gpu/stage.sh        (from the repository root)
set -euo pipefail
root=$(git rev-parse --show-toplevel)
cd "$root"
make build >/dev/null
stage=$root/.gpu/bundle
rm -rf "$stage" && mkdir -p "$stage/tmp/lib"
cp bin/salt-ort "$stage/tmp/"
cp -L third_party/onnxruntime/dist/lib/libonnxruntime.so "$stage/tmp/lib/"
# Every library the binary links besides glibc's own.
for l in $(ldd bin/salt-ort | awk '/=>/ {print $3}'); do
  case $(basename "$l") in
    libc.so.*|libm.so.*|libpthread.so.*|libdl.so.*|librt.so.*|ld-linux*) ;;
    *) cp -L "$l" "$stage/tmp/lib/" ;;
  esac
done
cp "$root/../shared/reference/gn2_reference.py" "$stage/tmp/"
tar czf "$stage/bundle.tar.gz" -C "$stage/tmp" .
rm -rf "$stage/tmp"
du -h "$stage/bundle.tar.gz"
cat <<'MSG'
After the three provider calls of ../shared/gpu/stage-ort-cuda, run in one device call:
  carry [".gpu/bundle"]   command: OUT=$OUT scripts/gpu/check.sh
MSG
