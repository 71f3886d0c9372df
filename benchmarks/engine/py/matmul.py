"""matmul: line-by-line Python port of c/matmul.c (same float64 operations, same output)."""

import sys


def main(argv):
    n = int(argv[0]) if argv else 100
    a = [0.0] * (n * n)
    b = [0.0] * (n * n)
    c = [0.0] * (n * n)

    for i in range(n):
        for j in range(n):
            a[i * n + j] = ((i * 7 + j * 3) % 17) / 16.0 - 0.5
            b[i * n + j] = ((i * 5 + j * 11) % 13) / 12.0 - 0.25

    for i in range(n):
        for j in range(n):
            s = 0.0
            for k in range(n):
                s += a[i * n + k] * b[k * n + j]
            c[i * n + j] = s

    total = 0.0
    trace = 0.0
    for i in range(n):
        trace += c[i * n + i]
        for j in range(n):
            total += c[i * n + j]
    print(f"matmul({n}) sum {total:.6f} trace {trace:.6f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
