/* ptrsort: quicksort written with pointers: median-of-three pivot, Hoare partition by two
 * pointers meeting in the middle, swaps through a helper, insertion sort below 16 elements.
 * N pseudo-random ints are sorted three times, reshuffled before each sort.
 * Stresses loads and stores through pointers that step by 4, pointer compares, swaps.
 * usage: ptrsort N         (prints a hash of the array after each sort) */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static uint32_t state = 0x2545F491u;

static uint32_t next(void)
{
    state ^= state << 13;
    state ^= state >> 17;
    state ^= state << 5;
    return state;
}

static void swap(int32_t *x, int32_t *y)
{
    int32_t t = *x;
    *x = *y;
    *y = t;
}

/* sorts lo[0] .. hi[0], both included */
static void sort(int32_t *lo, int32_t *hi)
{
    while (hi - lo > 16) {
        int32_t *mid = lo + (hi - lo) / 2;
        if (*mid < *lo)
            swap(mid, lo);
        if (*hi < *lo)
            swap(hi, lo);
        if (*hi < *mid)
            swap(hi, mid);
        int32_t pivot = *mid;
        int32_t *i = lo, *j = hi;
        for (;;) {
            while (*i < pivot)
                i++;
            while (*j > pivot)
                j--;
            if (i >= j)
                break;
            swap(i, j);
            i++;
            j--;
        }
        /* recurse into the smaller part, go on with the larger */
        if (j - lo < hi - j) {
            sort(lo, j);
            lo = j + 1;
        } else {
            sort(j + 1, hi);
            hi = j;
        }
    }
    for (int32_t *p = lo + 1; p <= hi; p++) {
        int32_t v = *p;
        int32_t *q = p;
        while (q > lo && q[-1] > v) {
            *q = q[-1];
            q--;
        }
        *q = v;
    }
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 10000;
    if (n < 2)
        return 2;
    int32_t *a = malloc(sizeof(int32_t) * (size_t)n);
    if (!a)
        return 2;
    for (int i = 0; i < n; i++)
        a[i] = (int32_t)(next() % 2000003u) - 1000000;
    for (int pass = 0; pass < 3; pass++) {
        for (int32_t *p = a + n - 1; p > a; p--)
            swap(p, a + next() % (uint32_t)(p - a + 1));
        sort(a, a + n - 1);
        uint32_t hash = 0;
        int sorted = 1;
        for (int i = 0; i < n; i++) {
            hash = (hash ^ (uint32_t)a[i]) * 16777619u;
            if (i > 0 && a[i - 1] > a[i])
                sorted = 0;
        }
        printf("pass %d: sorted %d first %d last %d hash %08x\n", pass, sorted, a[0], a[n - 1],
               hash);
    }
    free(a);
    return 0;
}
