"""strings: line-by-line Python port of c/strings.c (same output).

C strings live in bytearrays addressed by offsets. ``strlen`` and ``memcmp`` are ported as the
byte loops they are; ``memcpy`` is a slice assignment (a copy has no per-byte logic to port)."""

import sys

rng = 0x2545F491


def next_random():
    global rng
    rng ^= (rng << 13) & 0xFFFFFFFF
    rng ^= rng >> 17
    rng ^= (rng << 5) & 0xFFFFFFFF
    return rng


def strlen(buf, p):
    n = 0
    while buf[p + n] != 0:
        n += 1
    return n


def memcmp(buf1, p1, buf2, p2, n):
    for k in range(n):
        d = buf1[p1 + k] - buf2[p2 + k]
        if d != 0:
            return d
    return 0


def memcpy(dst, d, src, s, n):
    dst[d : d + n] = src[s : s + n]


def main(argv):
    n = int(argv[0]) if argv else 1000
    cap = n * 12 + 1
    text = bytearray(cap)
    pool = bytearray(cap)  # distinct words, NUL-terminated
    slots = 1
    while slots < 2 * n:
        slots *= 2
    table = [0] * slots  # pool offset + 1, or 0 = empty

    # words of 2..9 letters from a 6-letter alphabet, separated by single spaces
    length = 0
    for _ in range(n):
        r = next_random()
        wlen = 2 + r % 8
        for _ in range(wlen):
            text[length] = 97 + (next_random() >> 8) % 6
            length += 1
        text[length] = 32
        length += 1
    text[length] = 0

    word = bytearray(16)
    pool_len = 0
    words = 0
    distinct = 0
    p = 0
    while text[p] != 0:
        start = p
        while text[p] != 32:
            p += 1
        memcpy(word, 0, text, start, p - start)
        word[p - start] = 0
        p += 1
        words += 1
        wlen = strlen(word, 0)
        h = 2166136261
        for k in range(wlen):
            h = ((h ^ word[k]) * 16777619) & 0xFFFFFFFF
        slot = h & (slots - 1)
        while True:
            entry = table[slot]
            if entry == 0:
                memcpy(pool, pool_len, word, 0, wlen + 1)
                table[slot] = pool_len + 1
                pool_len += wlen + 1
                distinct += 1
                break
            seen = entry - 1
            if strlen(pool, seen) == wlen and memcmp(pool, seen, word, 0, wlen) == 0:
                break
            slot = (slot + 1) & (slots - 1)

    pattern = b"bad"
    matches = 0
    i = 0
    while i + 3 <= length:
        if memcmp(text, i, pattern, 0, 3) == 0:
            matches += 1
        i += 1

    h = 0
    q = 0
    while q < pool_len:
        wlen = strlen(pool, q)
        i = 0
        j = wlen - 1
        while i < j:
            t = pool[q + i]
            pool[q + i] = pool[q + j]
            pool[q + j] = t
            i += 1
            j -= 1
        for k in range(wlen):
            h = (h * 31 + pool[q + k]) & 0xFFFFFFFF
        q += wlen + 1
    print(f"words {words} distinct {distinct} matches {matches} hash {h:08x}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
