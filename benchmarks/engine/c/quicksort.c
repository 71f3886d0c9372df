/* quicksort: our own quicksort of N pseudo-random ints, three times (reshuffled before each
 * sort) with three comparison functions picked through a table at run time, so every
 * comparison is an indirect call.
 * Stresses call_indirect, i32 loads/stores and branches.
 * usage: quicksort N       (prints a hash of the array after each sort) */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

typedef int (*compare_fn)(int32_t, int32_t);

static int ascending(int32_t x, int32_t y) { return (x > y) - (x < y); }

static int descending_abs(int32_t x, int32_t y)
{
    int32_t ax = x < 0 ? -x : x;
    int32_t ay = y < 0 ? -y : y;
    return (ay > ax) - (ay < ax);
}

/* by the last three decimal digits of |x|, ties by value */
static int by_low_digits(int32_t x, int32_t y)
{
    int32_t dx = (x < 0 ? -x : x) % 1000;
    int32_t dy = (y < 0 ? -y : y) % 1000;
    if (dx != dy)
        return (dx > dy) - (dx < dy);
    return (x > y) - (x < y);
}

static compare_fn comparisons[3] = {ascending, descending_abs, by_low_digits};

/* Hoare partition around the middle element; recurses into both parts. */
static void quick_sort(int32_t *a, int lo, int hi, compare_fn cmp)
{
    if (lo >= hi)
        return;
    int32_t pivot = a[lo + (hi - lo) / 2];
    int i = lo, j = hi;
    while (i <= j) {
        while (cmp(a[i], pivot) < 0)
            i++;
        while (cmp(a[j], pivot) > 0)
            j--;
        if (i <= j) {
            int32_t t = a[i];
            a[i] = a[j];
            a[j] = t;
            i++;
            j--;
        }
    }
    quick_sort(a, lo, j, cmp);
    quick_sort(a, i, hi, cmp);
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 10000;
    int32_t *a = malloc(sizeof(int32_t) * (size_t)n);
    if (!a)
        return 2;
    uint32_t x = 0x12345678u;
    for (int i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        a[i] = (int32_t)(x >> 2) - (1 << 29);
    }
    /* the table index comes from the input, so the compiler cannot resolve the calls */
    for (int pass = 0; pass < 3; pass++) {
        /* Fisher-Yates, so that no sort sees the previous one's order (a middle pivot on
         * some orders makes quicksort quadratic) */
        for (int i = n - 1; i > 0; i--) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            int k = (int)(x % (uint32_t)(i + 1));
            int32_t t = a[i];
            a[i] = a[k];
            a[k] = t;
        }
        compare_fn cmp = comparisons[(pass + n) % 3];
        quick_sort(a, 0, n - 1, cmp);
        uint32_t hash = 0;
        for (int i = 0; i < n; i++)
            hash = (hash ^ (uint32_t)a[i]) * 16777619u;
        printf("pass %d: first %d last %d hash %08x\n", pass, a[0], a[n - 1], hash);
    }
    free(a);
    return 0;
}
