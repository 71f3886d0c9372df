"""imatmul: line-by-line Python port of c/imatmul.c (same output; the int32 values stay far
from overflow at the benchmark's sizes, so no wrapping is needed inside the product)."""

import sys

N = 32
a = [[0] * N for _ in range(N)]
b = [[0] * N for _ in range(N)]
c = [[0] * N for _ in range(N)]


def matmul():
    for i in range(N):
        ci = c[i]
        for j in range(N):
            ci[j] = 0
        for k in range(N):
            aik = a[i][k]
            bk = b[k]
            for j in range(N):
                ci[j] += aik * bk[j]


def main(argv):
    rounds = int(argv[0]) if argv else 10
    for i in range(N):
        for j in range(N):
            a[i][j] = (i * 7 + j * 3) % 17 - 8
            b[i][j] = (i * 5 + j * 11) % 13 - 6
    hash_ = 0
    for r in range(rounds):
        matmul()
        for i in range(N):
            for j in range(N):
                hash_ = (hash_ * 31 + (c[i][j] & 0xFFFFFFFF)) & 0xFFFFFFFF
        a[r % N][(r * 7) % N] += 1
    print(f"imatmul({rounds}) hash {hash_:08x}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
