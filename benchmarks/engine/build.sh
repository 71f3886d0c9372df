#!/usr/bin/env bash
# Rebuild the engine benchmark modules in wasm/ from c/ and wat/.
#
#   benchmarks/engine/build.sh          rebuild wasm/*.wasm in place
#   benchmarks/engine/build.sh --check  rebuild into a scratch directory and fail unless every
#                                       module comes out byte for byte as committed
#
# C: clang --target=wasm32-wasi -O2 -s through tests/fixtures/wasi-cc, which keeps wasm-opt out
# (Debian bookworm: clang-14, lld, wasi-libc,
# libclang-rt-14-dev-wasm32); WAT: wat2wasm (wabt 1.0.32). These are the versions the
# committed modules were built with (the same as /work/shared/bench and tests/fixtures);
# another version may produce different, equally valid bytes, which --check reports.
# Sources are compiled by relative path from this directory, so the output does not
# depend on where the repository is checked out.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CC=${CC:-clang}
WAT2WASM=${WAT2WASM:-wat2wasm}
WASI_CC=$here/../../tests/fixtures/wasi-cc

mode=build
case "${1:-}" in
  "") ;;
  --check) mode=check ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

for tool in "$CC" wasm-ld "$WAT2WASM"; do
  if ! command -v "$tool" >/dev/null; then
    echo "build.sh: '$tool' not found (Debian: apt-get install clang lld wasi-libc libclang-rt-14-dev-wasm32 wabt)" >&2
    exit 3
  fi
done

cd "$here"
if [ "$mode" = check ]; then
  out=$(mktemp -d)
  trap 'rm -rf "$out"' EXIT
else
  out=$here/wasm
fi

built=()
for src in c/*.c; do
  name=$(basename "$src" .c)
  CC=$CC "$WASI_CC" "$out/$name.wasm" "$src" -s
  chmod 644 "$out/$name.wasm"  # wasm-ld marks its output executable; these are data
  built+=("$name.wasm")
done
for src in wat/*.wat; do
  name=wat_$(basename "$src" .wat)
  "$WAT2WASM" -o "$out/$name.wasm" "$src"
  built+=("$name.wasm")
done

if [ "$mode" = build ]; then
  echo "built ${#built[@]} modules in $out"
  exit 0
fi

status=0
for module in "${built[@]}"; do
  if ! cmp -s "$out/$module" "wasm/$module"; then
    echo "build.sh --check: wasm/$module does not match a fresh build" >&2
    status=1
  fi
done
for committed in wasm/*.wasm; do
  [ -f "$out/$(basename "$committed")" ] || { echo "build.sh --check: $committed has no source" >&2; status=1; }
done
[ "$status" -eq 0 ] && echo "build.sh --check: all ${#built[@]} modules reproduce exactly"
exit "$status"
