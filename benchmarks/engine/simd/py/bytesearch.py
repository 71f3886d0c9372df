"""bytesearch: line-by-line Python port of c/bytesearch.c (same output)."""

import sys

N = 8192
BLOCK = 128
text = bytearray(N + 2)


def count(t, n, c0, c1, c2):
    hits = 0
    for start in range(0, n, BLOCK):
        block = 0
        for i in range(start, start + BLOCK):
            block = (block + ((t[i] == c0) & (t[i + 1] == c1) & (t[i + 2] == c2))) & 0xFF
        hits += block
    return hits


def main(argv):
    rounds = int(argv[0]) if argv else 10
    seed = 7
    for i in range(N + 2):
        seed = (seed * 1664525 + 1013904223) & 0xFFFFFFFF
        text[i] = 97 + (seed >> 24) % 4
    total = 0
    hash_ = 0
    for r in range(rounds):
        hits = count(text, N, 97 + r % 4, 97 + (r // 4) % 4, 97 + (r // 16) % 4)
        total = (total + hits) & 0xFFFFFFFF
        hash_ = (hash_ * 31 + hits) & 0xFFFFFFFF
        text[(r * 131) % N] ^= 1
    print(f"bytesearch({rounds}) total {total} hash {hash_:08x}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
