"""i64math: line-by-line Python port of c/i64math.c (u64 wrap-around emulated with a mask)."""

import sys

M64 = 0xFFFFFFFFFFFFFFFF

state = 0x9E3779B97F4A7C15


def next64():
    global state
    state ^= state >> 12
    state ^= (state << 25) & M64
    state ^= state >> 27
    return (state * 0x2545F4914F6CDD1D) & M64


def pow_mod(base, exp, mod):
    result = 1
    base %= mod
    while exp > 0:
        if exp & 1:
            result = result * base % mod
        base = base * base % mod
        exp >>= 1
    return result


BASES = (2, 7, 61)


def is_prime(n):
    """deterministic for n < 4,759,123,141 with the bases 2, 7 and 61"""
    if n < 2:
        return 0
    for i in range(3):
        if n % BASES[i] == 0:
            return int(n == BASES[i])
    d = n - 1
    s = 0
    while (d & 1) == 0:
        d >>= 1
        s += 1
    for i in range(3):
        x = pow_mod(BASES[i], d, n)
        if x == 1 or x == n - 1:
            continue
        composite = 1
        for _ in range(1, s):
            x = x * x % n
            if x == n - 1:
                composite = 0
                break
        if composite:
            return 0
    return 1


def main(argv):
    n = int(argv[0]) if argv else 1000
    count = 0
    total = 0
    mix = 0
    for _ in range(n):
        candidate = (next64() >> 32) | 1
        if is_prime(candidate):
            count += 1
            total = (total + candidate * candidate) & M64
        mix = ((mix ^ candidate) * 0x100000001B3) & M64
        mix ^= mix >> 31
    print(f"primes {count} of {n}, sum {total:016x} mix {mix:016x}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
