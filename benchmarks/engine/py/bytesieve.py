"""bytesieve: line-by-line Python port of c/bytesieve.c (the byte pointer is an index into a
bytearray)."""

import sys


def main(argv):
    limit = int(argv[0]) if argv else 100000
    if limit < 3:
        return 2
    size = (limit - 1) // 2 + 1  # flags for 1, 3, 5, ..., the largest odd <= limit
    composite = bytearray(size)
    composite[0] = 1  # 1 is not prime
    end = size
    i = 1
    while (2 * i + 1) * (2 * i + 1) <= limit:
        if composite[i]:
            i += 1
            continue
        p = 2 * i + 1
        m = (p * p) // 2
        while m < end:
            composite[m] = 1
            m += p
        i += 1
    count = 1  # 2 is prime
    twins = 0
    hash_ = 0
    last = 2
    for i in range(1, size):
        if composite[i]:
            continue
        prime = 2 * i + 1
        count += 1
        if prime - last == 2:
            twins += 1
        hash_ = ((hash_ * 31) & 0xFFFFFFFF) ^ (prime - last)
        last = prime
    print(f"bytesieve({limit}) primes {count} twins {twins} largest {last} hash {hash_:08x}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
