/* strings: generate N pseudo-random words, split the text into words, count the distinct
 * ones in a hash table, search a pattern at every position, and reverse the stored words.
 * Stresses byte loads and stores, and strlen, memcpy and memcmp from wasi-libc.
 * usage: strings N         (prints word counts, pattern matches and a hash) */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint32_t rng = 0x2545f491u;

static uint32_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return rng;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 1000;
    size_t cap = (size_t)n * 12 + 1;
    char *text = malloc(cap);
    char *pool = malloc(cap);             /* distinct words, NUL-terminated */
    uint32_t slots = 1;
    while (slots < 2u * (uint32_t)n)
        slots *= 2;
    int32_t *table = malloc(sizeof(int32_t) * slots); /* pool offset + 1, or 0 = empty */
    if (!text || !pool || !table)
        return 2;
    memset(table, 0, sizeof(int32_t) * slots);

    /* words of 2..9 letters from a 6-letter alphabet, separated by single spaces */
    size_t len = 0;
    for (int i = 0; i < n; i++) {
        uint32_t r = next();
        int wlen = 2 + (int)(r % 8);
        for (int k = 0; k < wlen; k++)
            text[len++] = (char)('a' + (next() >> 8) % 6);
        text[len++] = ' ';
    }
    text[len] = '\0';

    char word[16];
    size_t pool_len = 0;
    int words = 0, distinct = 0;
    size_t p = 0;
    while (text[p] != '\0') {
        size_t start = p;
        while (text[p] != ' ')
            p++;
        memcpy(word, text + start, p - start);
        word[p - start] = '\0';
        p++;
        words++;
        size_t wlen = strlen(word);
        uint32_t h = 2166136261u;
        for (size_t k = 0; k < wlen; k++)
            h = (h ^ (uint8_t)word[k]) * 16777619u;
        uint32_t slot = h & (slots - 1);
        for (;;) {
            int32_t entry = table[slot];
            if (entry == 0) {
                memcpy(pool + pool_len, word, wlen + 1);
                table[slot] = (int32_t)pool_len + 1;
                pool_len += wlen + 1;
                distinct++;
                break;
            }
            const char *seen = pool + entry - 1;
            if (strlen(seen) == wlen && memcmp(seen, word, wlen) == 0)
                break;
            slot = (slot + 1) & (slots - 1);
        }
    }

    int matches = 0;
    for (size_t i = 0; i + 3 <= len; i++) {
        if (memcmp(text + i, "bad", 3) == 0)
            matches++;
    }

    uint32_t hash = 0;
    size_t q = 0;
    while (q < pool_len) {
        size_t wlen = strlen(pool + q);
        for (size_t i = 0, j = wlen - 1; i < j; i++, j--) {
            char t = pool[q + i];
            pool[q + i] = pool[q + j];
            pool[q + j] = t;
        }
        for (size_t k = 0; k < wlen; k++)
            hash = hash * 31u + (uint8_t)pool[q + k];
        q += wlen + 1;
    }
    printf("words %d distinct %d matches %d hash %08x\n", words, distinct, matches, hash);
    free(text);
    free(pool);
    free(table);
    return 0;
}
