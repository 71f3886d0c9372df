"""wat_memsum: Python equivalent of the export memsum in wat/memsum.wat.

Linear memory's 4096 i32 words are a list of ints; i32 wrap-around is emulated with a mask
and the result is returned signed, as the engines return i32 results."""

MASK = 0xFFFFFFFF


def memsum(passes):
    mem = [0] * 4096
    x = 12345
    i = 0
    while i < 4096:
        x = (x * 1664525 + 1013904223) & MASK
        mem[i] = x
        i += 1
    acc = 0
    p = 0
    while p < passes:
        i = 0
        while i < 4096:
            word = mem[i]
            v = acc ^ word
            acc = ((((v << 5) | (v >> 27)) & MASK) + i) & MASK
            mem[i] = (word + (acc >> 3)) & MASK
            i += 1
        p += 1
    return acc - (1 << 32) if acc >> 31 else acc


if __name__ == "__main__":
    import sys

    print([memsum(int(sys.argv[1]))])
