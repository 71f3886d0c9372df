"""wat_orbit: Python equivalent of the export orbit in wat/orbit.wat (same f64 operations in
the same order, so the result is bit for bit the same)."""

from math import sqrt


def orbit(n):
    x = 1.0
    v = 0.0
    acc = 0.0
    i = 0
    while i < n:
        a = -4.0 * x - 0.01 * v * sqrt(abs(v) + 1.0)
        v = v + a * 0.001
        x = x + v * 0.001
        # a kick whenever the oscillator has nearly died down
        if abs(x) < 0.0001:
            v = v + 1.0
        acc = acc + x * x / 3.0
        i += 1
    return acc


if __name__ == "__main__":
    import sys

    print([orbit(int(sys.argv[1]))])
