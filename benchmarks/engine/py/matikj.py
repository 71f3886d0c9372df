"""matikj: line-by-line Python port of c/matikj.c (row pointers become list offsets)."""

import sys


def product_u32(c, a, b, n):
    for i in range(n):
        ci = i * n
        ai = i * n
        for j in range(n):
            c[ci + j] = 0
        for k in range(n):
            aik = a[ai + k]
            bk = k * n
            for j in range(n):
                c[ci + j] = (c[ci + j] + aik * b[bk + j]) & 0xFFFFFFFF


def product_f64(c, a, b, n):
    for i in range(n):
        ci = i * n
        ai = i * n
        for j in range(n):
            c[ci + j] = 0.0
        for k in range(n):
            aik = a[ai + k]
            bk = k * n
            for j in range(n):
                c[ci + j] += aik * b[bk + j]


def main(argv):
    n = int(argv[0]) if argv else 60
    cells = n * n
    ia = [0] * cells
    ib = [0] * cells
    ic = [0] * cells
    fa = [0.0] * cells
    fb = [0.0] * cells
    fc = [0.0] * cells

    x = 0x9E3779B9
    for i in range(n):
        for j in range(n):
            x ^= (x << 13) & 0xFFFFFFFF
            x ^= x >> 17
            x ^= (x << 5) & 0xFFFFFFFF
            ia[i * n + j] = x
            ib[j * n + i] = (x * 2654435761 + j) & 0xFFFFFFFF
            fa[i * n + j] = (x % 2001) / 1000.0 - 1.0
            fb[j * n + i] = ((x >> 11) % 999) / 500.0 - 0.999

    product_u32(ic, ia, ib, n)
    product_f64(fc, fa, fb, n)

    hash_ = 2166136261
    total = 0.0
    trace = 0.0
    for i in range(n):
        trace += fc[i * n + i]
        for j in range(n):
            hash_ = ((hash_ ^ ic[i * n + j]) * 16777619) & 0xFFFFFFFF
            total += fc[i * n + j]
    print(f"matikj({n}) hash {hash_:08x} sum {total:.6f} trace {trace:.6f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
