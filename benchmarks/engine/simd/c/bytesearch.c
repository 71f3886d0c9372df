/* bytesearch: count the places where a 3-byte needle occurs in an 8 KiB text over the
 * alphabet a-d, for ROUNDS needles (one text byte changes between rounds). Matches are
 * counted per 128-byte block in a byte, so clang vectorises the scan to 16 positions at a
 * time: v128.load, i8x16.shuffle (the text shifted by one byte), i8x16.eq, v128.and, i8x16.add.
 * usage: bytesearch ROUNDS   (prints the total count and a hash of the counts) */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define N 8192
#define BLOCK 128
static uint8_t text[N + 2];

static int count(const uint8_t *t, int n, uint8_t c0, uint8_t c1, uint8_t c2)
{
    int hits = 0;
    for (int start = 0; start < n; start += BLOCK) {
        uint8_t block = 0;
        for (int i = start; i < start + BLOCK; i++)
            block += (t[i] == c0) & (t[i + 1] == c1) & (t[i + 2] == c2);
        hits += block;
    }
    return hits;
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 10;
    uint32_t seed = 7;
    for (int i = 0; i < N + 2; i++) {
        seed = seed * 1664525u + 1013904223u;
        text[i] = (uint8_t)('a' + (seed >> 24) % 4);
    }
    uint32_t total = 0, hash = 0;
    for (int r = 0; r < rounds; r++) {
        int hits = count(text, N, 'a' + r % 4, 'a' + (r / 4) % 4, 'a' + (r / 16) % 4);
        total += (uint32_t)hits;
        hash = hash * 31u + (uint32_t)hits;
        text[(r * 131) % N] ^= 1;
    }
    printf("bytesearch(%d) total %u hash %08x\n", rounds, total, hash);
    return 0;
}
