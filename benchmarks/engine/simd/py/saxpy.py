"""saxpy: line-by-line Python port of c/saxpy.c (same output, bit for bit).

The arrays are ``array('f')``, so a store rounds to single precision as a C float store
does; ``f32`` rounds an intermediate product (double has more than twice the bits, so one
operation in double rounded to single is the single-precision result)."""

import struct
import sys
from array import array

N = 1024

_round = array("f", [0.0])


def f32(v):
    _round[0] = v
    return _round[0]


C_0_75 = f32(0.75)

x = array("f", [0.0] * N)
y = array("f", [0.0] * N)


def saxpy(a, xs, ys, n):
    for i in range(n):
        ys[i] = f32(a * xs[i]) + ys[i]


def main(argv):
    rounds = int(argv[0]) if argv else 100
    for i in range(N):
        x[i] = ((i * 37) % 101) / 64.0 - C_0_75
        y[i] = ((i * 11) % 29) / 8.0
    for _r in range(rounds):
        saxpy(0.5, x, y, N)
        saxpy(-0.25, y, x, N)
    total = 0.0
    hash_ = 2166136261
    for i in range(N):
        bits = struct.unpack("<I", struct.pack("<f", y[i]))[0]
        hash_ = ((hash_ ^ bits) * 16777619) & 0xFFFFFFFF
        total += f32(y[i] + x[i])
    print(f"saxpy({rounds}) sum {total:.6f} hash {hash_:08x}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
