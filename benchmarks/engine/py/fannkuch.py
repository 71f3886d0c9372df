"""fannkuch: line-by-line Python port of c/fannkuch.c."""

import sys

MAX_N = 12


def fannkuch(n):
    perm = [0] * MAX_N
    order = [0] * MAX_N
    count = [0] * MAX_N
    most = 0
    checksum = 0
    index = 0
    r = n
    for i in range(n):
        order[i] = i
    while True:
        while r != 1:
            count[r - 1] = r
            r -= 1
        for i in range(n):
            perm[i] = order[i]
        flips = 0
        while True:
            first = perm[0]
            if first == 0:
                break
            lo = 0
            hi = first
            while lo < hi:
                t = perm[lo]
                perm[lo] = perm[hi]
                perm[hi] = t
                lo += 1
                hi -= 1
            flips += 1
        if flips > most:
            most = flips
        checksum += flips if index % 2 == 0 else -flips
        # the next order: rotate the first r+1 entries left by one, carrying over
        while True:
            if r == n:
                return most, checksum
            head = order[0]
            for i in range(r):
                order[i] = order[i + 1]
            order[r] = head
            count[r] -= 1
            if count[r] > 0:
                break
            r += 1
        index += 1


def main(argv):
    n = int(argv[0]) if argv else 7
    if n < 1 or n > MAX_N:
        return 2
    most, checksum = fannkuch(n)
    print(f"fannkuch({n}) checksum {checksum} flips {most}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
