/* fannkuch: for every permutation of 0..N-1 (in a fixed order made by rotating prefixes),
 * count the prefix reversals that bring 0 to the front; report the most and a checksum.
 * Stresses small int arrays on the stack shuffled in place: copies, swaps, rotations.
 * usage: fannkuch N        (prints the checksum and the largest number of flips) */
#include <stdio.h>
#include <stdlib.h>

#define MAX_N 12

static int fannkuch(int n, int *checksum_out)
{
    int perm[MAX_N], order[MAX_N], count[MAX_N];
    int most = 0, checksum = 0, index = 0;
    int r = n;
    for (int i = 0; i < n; i++)
        order[i] = i;
    for (;;) {
        while (r != 1) {
            count[r - 1] = r;
            r--;
        }
        for (int i = 0; i < n; i++)
            perm[i] = order[i];
        int flips = 0;
        int first;
        while ((first = perm[0]) != 0) {
            for (int lo = 0, hi = first; lo < hi; lo++, hi--) {
                int t = perm[lo];
                perm[lo] = perm[hi];
                perm[hi] = t;
            }
            flips++;
        }
        if (flips > most)
            most = flips;
        checksum += index % 2 == 0 ? flips : -flips;
        /* the next order: rotate the first r+1 entries left by one, carrying over */
        for (;;) {
            if (r == n) {
                *checksum_out = checksum;
                return most;
            }
            int head = order[0];
            for (int i = 0; i < r; i++)
                order[i] = order[i + 1];
            order[r] = head;
            count[r]--;
            if (count[r] > 0)
                break;
            r++;
        }
        index++;
    }
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 7;
    if (n < 1 || n > MAX_N)
        return 2;
    int checksum = 0;
    int most = fannkuch(n, &checksum);
    printf("fannkuch(%d) checksum %d flips %d\n", n, checksum, most);
    return 0;
}
