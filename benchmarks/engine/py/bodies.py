"""bodies: line-by-line Python port of c/bodies.c (a struct is a list of its fields, a struct
pointer an index into the list of bodies)."""

import math
import sys

COUNT = 12
X, Y, Z, VX, VY, VZ, AX, AY, AZ, MASS = range(10)

bodies = [[0.0] * 10 for _ in range(COUNT)]


def setup():
    for i in range(COUNT):
        b = bodies[i]
        r = 1.0 + 0.5 * i
        b[X] = r * ((i % 3) - 1.0)
        b[Y] = r * (((i // 3) % 3) - 1.0) + 0.25
        b[Z] = 0.1 * i - 0.5
        b[VX] = 0.05 * ((i % 4) - 1.5)
        b[VY] = 0.03 * ((i % 5) - 2.0)
        b[VZ] = 0.01 * i
        b[MASS] = 1.0 + (i % 4) * 0.25


def accelerate():
    end = COUNT
    for bi in range(end):
        b = bodies[bi]
        b[AX] = b[AY] = b[AZ] = 0.0
    for bi in range(end):
        b = bodies[bi]
        for oi in range(bi + 1, end):
            o = bodies[oi]
            dx = o[X] - b[X]
            dy = o[Y] - b[Y]
            dz = o[Z] - b[Z]
            d2 = dx * dx + dy * dy + dz * dz + 0.01
            inv = 1.0 / (d2 * math.sqrt(d2))
            b[AX] += dx * o[MASS] * inv
            b[AY] += dy * o[MASS] * inv
            b[AZ] += dz * o[MASS] * inv
            o[AX] -= dx * b[MASS] * inv
            o[AY] -= dy * b[MASS] * inv
            o[AZ] -= dz * b[MASS] * inv


def step(dt):
    accelerate()
    for bi in range(COUNT):
        b = bodies[bi]
        b[VX] += b[AX] * dt
        b[VY] += b[AY] * dt
        b[VZ] += b[AZ] * dt
        b[X] += b[VX] * dt
        b[Y] += b[VY] * dt
        b[Z] += b[VZ] * dt


def energy():
    e = 0.0
    for i in range(COUNT):
        b = bodies[i]
        e += 0.5 * b[MASS] * (b[VX] * b[VX] + b[VY] * b[VY] + b[VZ] * b[VZ])
        for j in range(i + 1, COUNT):
            o = bodies[j]
            dx = o[X] - b[X]
            dy = o[Y] - b[Y]
            dz = o[Z] - b[Z]
            e -= b[MASS] * o[MASS] / math.sqrt(dx * dx + dy * dy + dz * dz + 0.01)
    return e


def main(argv):
    steps = int(argv[0]) if argv else 100
    setup()
    before = energy()
    for _ in range(steps):
        step(0.001)
    after = energy()
    px = py = pz = 0.0
    for i in range(COUNT):
        px += bodies[i][MASS] * bodies[i][VX]
        py += bodies[i][MASS] * bodies[i][VY]
        pz += bodies[i][MASS] * bodies[i][VZ]
    print(f"bodies({steps}) energy {before:.9f} -> {after:.9f} momentum {px:.9f} {py:.9f} {pz:.9f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
