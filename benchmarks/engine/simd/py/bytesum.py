"""bytesum: line-by-line Python port of c/bytesum.c (same output)."""

import sys

N = 4096

buf = bytearray(N)


def checksum(p, n):
    total = 0
    weighted = 0
    for i in range(n):
        total = (total + p[i]) & 0xFFFFFFFF
        weighted = (weighted + p[i] * (i & 255)) & 0xFFFFFFFF
    return (total ^ (weighted << 7)) & 0xFFFFFFFF


def main(argv):
    rounds = int(argv[0]) if argv else 100
    seed = 12345
    total = 0
    for _r in range(rounds):
        for _i in range(64):
            seed = (seed * 1103515245 + 12345) & 0xFFFFFFFF
            buf[(seed >> 8) % N] = (seed >> 24) & 0xFF
        total = (total * 31 + checksum(buf, N)) & 0xFFFFFFFF
    print(f"bytesum({rounds}) total {total:08x}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
