"""particles: line-by-line Python port of c/particles.c (same output, bit for bit).

C's ``float`` arithmetic rounds every operation to single precision. Here each operation is
done in double and rounded to single with ``f32`` (storing into an ``array('f')``), which gives
exactly the single-precision result for +, -, *, / and sqrt (double has more than twice the
bits). The particle arrays are ``array('f')`` too, so a store rounds as a C float store does."""

import struct
import sys
from array import array
from math import sqrt

N = 128

_round = array("f", [0.0])


def f32(x):
    _round[0] = x
    return _round[0]


C_0_1 = f32(0.1)
C_0_2 = f32(0.2)
C_0_75 = f32(0.75)
C_0_8 = f32(0.8)
C_0_999 = f32(0.999)
C_9_8 = f32(9.8)
C_0_01 = f32(0.01)

px = array("f", [0.0] * N)
py = array("f", [0.0] * N)
vx = array("f", [0.0] * N)
vy = array("f", [0.0] * N)


def step(dt):
    for i in range(N):
        dx = f32(px[i] - 4.0)
        dy = f32(py[i] - 3.0)
        r = f32(f32(sqrt(f32(f32(dx * dx) + f32(dy * dy)))) + C_0_1)
        pull = f32(0.5 / r)
        vx[i] = f32(vx[i] - f32(f32(dx * pull) * dt)) * C_0_999
        vy[i] = f32(vy[i] - f32(f32(C_9_8 + f32(dy * pull)) * dt)) * C_0_999
        px[i] += f32(vx[i] * dt)
        py[i] += f32(vy[i] * dt)
        if py[i] < 0.0:
            py[i] = -py[i]
            vy[i] = -vy[i] * C_0_8
        if px[i] < 0.0:
            px[i] = -px[i]
            vx[i] = -vx[i]
        elif px[i] > 8.0:
            px[i] = 16.0 - px[i]
            vx[i] = -vx[i]


def bits(f):
    return struct.unpack("<I", struct.pack("<f", f))[0]


def main(argv):
    steps = int(argv[0]) if argv else 100
    for i in range(N):
        px[i] = (i % 16) * 0.5
        py[i] = f32((i // 16) * C_0_75) + 1.0
        vx[i] = f32((i % 7) - 3.0) * C_0_1
        vy[i] = f32((i % 5) - 2.0) * C_0_2
    for _ in range(steps):
        step(C_0_01)
    sx = 0.0
    sy = 0.0
    energy = 0.0
    h = 0
    for i in range(N):
        sx = f32(sx + px[i])
        sy = f32(sy + py[i])
        energy = f32(energy + f32(0.5 * f32(f32(vx[i] * vx[i]) + f32(vy[i] * vy[i]))))
        h = ((h ^ bits(px[i])) * 16777619) & 0xFFFFFFFF
        h = ((h ^ bits(vy[i])) * 16777619) & 0xFFFFFFFF
    print(f"particles({steps}) x {sx:.6f} y {sy:.6f} energy {energy:.6f} hash {h:08x}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
