"""ptrsort: line-by-line Python port of c/ptrsort.c (pointers become indices into one list)."""

import sys

state = 0x2545F491


def next_():
    global state
    state ^= (state << 13) & 0xFFFFFFFF
    state ^= state >> 17
    state ^= (state << 5) & 0xFFFFFFFF
    return state


def swap(a, x, y):
    t = a[x]
    a[x] = a[y]
    a[y] = t


def sort(a, lo, hi):
    """sorts a[lo] .. a[hi], both included"""
    while hi - lo > 16:
        mid = lo + (hi - lo) // 2
        if a[mid] < a[lo]:
            swap(a, mid, lo)
        if a[hi] < a[lo]:
            swap(a, hi, lo)
        if a[hi] < a[mid]:
            swap(a, hi, mid)
        pivot = a[mid]
        i = lo
        j = hi
        while True:
            while a[i] < pivot:
                i += 1
            while a[j] > pivot:
                j -= 1
            if i >= j:
                break
            swap(a, i, j)
            i += 1
            j -= 1
        # recurse into the smaller part, go on with the larger
        if j - lo < hi - j:
            sort(a, lo, j)
            lo = j + 1
        else:
            sort(a, j + 1, hi)
            hi = j
    p = lo + 1
    while p <= hi:
        v = a[p]
        q = p
        while q > lo and a[q - 1] > v:
            a[q] = a[q - 1]
            q -= 1
        a[q] = v
        p += 1


def main(argv):
    global state
    state = 0x2545F491
    n = int(argv[0]) if argv else 10000
    if n < 2:
        return 2
    a = [0] * n
    for i in range(n):
        a[i] = next_() % 2000003 - 1000000
    for pass_ in range(3):
        p = n - 1
        while p > 0:
            swap(a, p, next_() % (p + 1))
            p -= 1
        sort(a, 0, n - 1)
        hash_ = 0
        is_sorted = 1
        for i in range(n):
            hash_ = ((hash_ ^ (a[i] & 0xFFFFFFFF)) * 16777619) & 0xFFFFFFFF
            if i > 0 and a[i - 1] > a[i]:
                is_sorted = 0
        print(f"pass {pass_}: sorted {is_sorted} first {a[0]} last {a[n - 1]} hash {hash_:08x}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
