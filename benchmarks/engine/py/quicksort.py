"""quicksort: line-by-line Python port of c/quicksort.c (same output).

Values are Python ints kept in the int32 range, as in C; every comparison goes through the
comparison function passed in, as the C code's indirect calls do."""

import sys

sys.setrecursionlimit(10000)


def ascending(x, y):
    return (x > y) - (x < y)


def descending_abs(x, y):
    ax = -x if x < 0 else x
    ay = -y if y < 0 else y
    return (ay > ax) - (ay < ax)


def by_low_digits(x, y):
    """by the last three decimal digits of |x|, ties by value"""
    dx = (-x if x < 0 else x) % 1000
    dy = (-y if y < 0 else y) % 1000
    if dx != dy:
        return (dx > dy) - (dx < dy)
    return (x > y) - (x < y)


comparisons = [ascending, descending_abs, by_low_digits]


def quick_sort(a, lo, hi, cmp):
    """Hoare partition around the middle element; recurses into both parts."""
    if lo >= hi:
        return
    pivot = a[lo + (hi - lo) // 2]
    i = lo
    j = hi
    while i <= j:
        while cmp(a[i], pivot) < 0:
            i += 1
        while cmp(a[j], pivot) > 0:
            j -= 1
        if i <= j:
            t = a[i]
            a[i] = a[j]
            a[j] = t
            i += 1
            j -= 1
    quick_sort(a, lo, j, cmp)
    quick_sort(a, i, hi, cmp)


def main(argv):
    n = int(argv[0]) if argv else 10000
    a = [0] * n
    x = 0x12345678
    for i in range(n):
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        a[i] = (x >> 2) - (1 << 29)
    for p in range(3):
        # Fisher-Yates, so that no sort sees the previous one's order (a middle pivot on
        # some orders makes quicksort quadratic)
        for i in range(n - 1, 0, -1):
            x ^= (x << 13) & 0xFFFFFFFF
            x ^= x >> 17
            x ^= (x << 5) & 0xFFFFFFFF
            k = x % (i + 1)
            t = a[i]
            a[i] = a[k]
            a[k] = t
        cmp = comparisons[(p + n) % 3]
        quick_sort(a, 0, n - 1, cmp)
        h = 0
        for i in range(n):
            h = ((h ^ (a[i] & 0xFFFFFFFF)) * 16777619) & 0xFFFFFFFF
        print(f"pass {p}: first {a[0]} last {a[n - 1]} hash {h:08x}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
