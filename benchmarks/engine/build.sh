#!/usr/bin/env bash
# Rebuild the engine benchmark modules in wasm/ from c/ and wat/, and the SIMD kernels'
# modules in simd/wasm/ (scalar) and simd/wasm/simd128/ (-msimd128) from simd/c/.
#
#   benchmarks/engine/build.sh          rebuild the modules in place
#   benchmarks/engine/build.sh --check  rebuild into a scratch directory and fail unless every
#                                       module comes out byte for byte as committed
#
# C: clang --target=wasm32-wasi -O2 -s through tests/fixtures/wasi-cc, which keeps wasm-opt out
# (Debian bookworm: clang-14, lld, wasi-libc,
# libclang-rt-14-dev-wasm32); WAT: wat2wasm (wabt 1.0.32). These are the versions the
# committed modules were built with (the same as /work/shared/bench and tests/fixtures);
# another version may produce different, equally valid bytes, which --check reports.
# Sources are compiled by relative path from this directory, so the output does not
# depend on where the repository is checked out. Each SIMD kernel is built from one source
# twice, and wasm-objdump (wabt) checks that only the -msimd128 build has v128 instructions,
# so a kernel that clang stops vectorising fails the build.
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

WASM_OBJDUMP=${WASM_OBJDUMP:-wasm-objdump}

for tool in "$CC" wasm-ld "$WAT2WASM" "$WASM_OBJDUMP"; do
  if ! command -v "$tool" >/dev/null; then
    echo "build.sh: '$tool' not found (Debian: apt-get install clang lld wasi-libc libclang-rt-14-dev-wasm32 wabt)" >&2
    exit 3
  fi
done

cd "$here"
if [ "$mode" = check ]; then
  out=$(mktemp -d)
  trap 'rm -rf "$out"' EXIT
  mkdir -p "$out/wasm" "$out/simd/wasm/simd128"
else
  out=$here
fi

built=()  # paths relative to this directory
compile_c() {  # compile_c SOURCE MODULE [COMPILE-FLAGS]
  CC=$CC WASI_CFLAGS=${3:-} "$WASI_CC" "$out/$2" "$1" -s
  chmod 644 "$out/$2"  # wasm-ld marks its output executable; these are data
  built+=("$2")
}
simd_instructions() {  # how many instructions of a module's code name a v128 shape
  "$WASM_OBJDUMP" -d "$1" | grep -cE '\b(v128|[if](8x16|16x8|32x4|64x2))\.' || true
}
for src in c/*.c; do
  compile_c "$src" "wasm/$(basename "$src" .c).wasm"
done
for src in wat/*.wat; do
  name=wat_$(basename "$src" .wat)
  "$WAT2WASM" -o "$out/wasm/$name.wasm" "$src"
  built+=("wasm/$name.wasm")
done
for src in simd/c/*.c; do
  name=$(basename "$src" .c)
  compile_c "$src" "simd/wasm/$name.wasm"
  compile_c "$src" "simd/wasm/simd128/$name.wasm" -msimd128
  scalar=$(simd_instructions "$out/simd/wasm/$name.wasm")
  vector=$(simd_instructions "$out/simd/wasm/simd128/$name.wasm")
  if [ "$scalar" -ne 0 ] || [ "$vector" -eq 0 ]; then
    echo "build.sh: $src: $vector SIMD instructions with -msimd128, $scalar without" >&2
    exit 1
  fi
done

if [ "$mode" = build ]; then
  echo "built ${#built[@]} modules in $out"
  exit 0
fi

status=0
for module in "${built[@]}"; do
  if ! cmp -s "$out/$module" "$module"; then
    echo "build.sh --check: $module does not match a fresh build" >&2
    status=1
  fi
done
for committed in wasm/*.wasm simd/wasm/*.wasm simd/wasm/simd128/*.wasm; do
  [ -f "$out/$committed" ] || { echo "build.sh --check: $committed has no source" >&2; status=1; }
done
[ "$status" -eq 0 ] && echo "build.sh --check: all ${#built[@]} modules reproduce exactly"
exit "$status"
