"""mandelbrot: line-by-line Python port of c/mandelbrot.c (same output)."""

import sys

MAX_ITER = 64


def main(argv):
    w = int(argv[0]) if argv else 100
    inside = 0
    total = 0
    h = 0
    for y in range(w):
        ci = 2.0 * y / w - 1.0
        for x in range(w):
            cr = 2.5 * x / w - 2.0
            zr = 0.0
            zi = 0.0
            it = 0
            while it < MAX_ITER:
                zr2 = zr * zr
                zi2 = zi * zi
                if zr2 + zi2 > 4.0:
                    break
                zi = 2.0 * zr * zi + ci
                zr = zr2 - zi2 + cr
                it += 1
            total = (total + it) & 0xFFFFFFFF
            if it == MAX_ITER:
                inside += 1
            h = (h * 31 + it) & 0xFFFFFFFF
    print(f"mandelbrot({w}) inside {inside} iterations {total} hash {h:08x}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
