/* bytesum: a checksum over a 4096-byte buffer (the sum of the bytes and their sum weighted
 * by position), recomputed ROUNDS times while 64 random bytes change between rounds.
 * With -msimd128 clang widens the bytes to i32x4 lanes (by shuffles) and adds and
 * multiplies four lanes at a time.
 * usage: bytesum ROUNDS   (prints a hash of every round's checksum) */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define N 4096

static uint8_t buf[N];

static uint32_t checksum(const uint8_t *p, int n)
{
    uint32_t sum = 0, weighted = 0;
    for (int i = 0; i < n; i++) {
        sum += p[i];
        weighted += (uint32_t)p[i] * (uint32_t)(i & 255);
    }
    return sum ^ (weighted << 7);
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 100;
    uint32_t seed = 12345, total = 0;
    for (int r = 0; r < rounds; r++) {
        for (int i = 0; i < 64; i++) {
            seed = seed * 1103515245u + 12345u;
            buf[(seed >> 8) % N] = (uint8_t)(seed >> 24);
        }
        total = total * 31u + checksum(buf, N);
    }
    printf("bytesum(%d) total %08x\n", rounds, total);
    return 0;
}
