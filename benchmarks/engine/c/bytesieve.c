/* bytesieve: an odd-only Sieve of Eratosthenes over a byte array (flag i stands for 2i+1),
 * marked through a byte pointer stepping by p, then a scan that counts primes and twin
 * primes and hashes the gaps between primes.
 * Stresses byte stores through a stepping pointer, byte loads in a scan, branches.
 * usage: bytesieve LIMIT   (counts primes <= LIMIT, twin pairs, and a hash of the gaps) */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    int limit = argc > 1 ? atoi(argv[1]) : 100000;
    if (limit < 3)
        return 2;
    int size = (limit - 1) / 2 + 1; /* flags for 1, 3, 5, ..., the largest odd <= limit */
    unsigned char *composite = malloc((size_t)size);
    if (!composite)
        return 2;
    memset(composite, 0, (size_t)size);
    composite[0] = 1; /* 1 is not prime */
    unsigned char *end = composite + size;
    for (int i = 1; (2 * i + 1) * (2 * i + 1) <= limit; i++) {
        if (composite[i])
            continue;
        int p = 2 * i + 1;
        for (unsigned char *m = composite + (p * p) / 2; m < end; m += p)
            *m = 1;
    }
    uint32_t count = 1, twins = 0, hash = 0; /* 2 is prime */
    int last = 2;
    for (int i = 1; i < size; i++) {
        if (composite[i])
            continue;
        int prime = 2 * i + 1;
        count++;
        if (prime - last == 2)
            twins++;
        hash = (hash * 31u) ^ (uint32_t)(prime - last);
        last = prime;
    }
    printf("bytesieve(%d) primes %u twins %u largest %d hash %08x\n", limit, count, twins, last,
           hash);
    free(composite);
    return 0;
}
