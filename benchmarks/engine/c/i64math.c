/* i64math: Miller-Rabin primality of N pseudo-random 32-bit odd numbers drawn from a
 * xorshift64* generator, with 64-bit modular exponentiation (products stay below 2^64).
 * Stresses i64 multiply, shifts, xors, unsigned division and remainder.
 * usage: i64math N         (prints the prime count and two 64-bit checksums) */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static uint64_t state = 0x9e3779b97f4a7c15ull;

static uint64_t next64(void)
{
    state ^= state >> 12;
    state ^= state << 25;
    state ^= state >> 27;
    return state * 0x2545f4914f6cdd1dull;
}

static uint64_t pow_mod(uint64_t base, uint64_t exp, uint64_t mod)
{
    uint64_t result = 1;
    base %= mod;
    while (exp > 0) {
        if (exp & 1)
            result = result * base % mod;
        base = base * base % mod;
        exp >>= 1;
    }
    return result;
}

/* deterministic for n < 4,759,123,141 with the bases 2, 7 and 61 */
static int is_prime(uint64_t n)
{
    static const uint64_t bases[3] = {2, 7, 61};
    if (n < 2)
        return 0;
    for (int i = 0; i < 3; i++) {
        if (n % bases[i] == 0)
            return n == bases[i];
    }
    uint64_t d = n - 1;
    int s = 0;
    while ((d & 1) == 0) {
        d >>= 1;
        s++;
    }
    for (int i = 0; i < 3; i++) {
        uint64_t x = pow_mod(bases[i], d, n);
        if (x == 1 || x == n - 1)
            continue;
        int composite = 1;
        for (int r = 1; r < s; r++) {
            x = x * x % n;
            if (x == n - 1) {
                composite = 0;
                break;
            }
        }
        if (composite)
            return 0;
    }
    return 1;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 1000;
    uint64_t count = 0, sum = 0, mix = 0;
    for (long i = 0; i < n; i++) {
        uint64_t candidate = (next64() >> 32) | 1;
        if (is_prime(candidate)) {
            count++;
            sum += candidate * candidate;
        }
        mix = (mix ^ candidate) * 0x100000001b3ull;
        mix ^= mix >> 31;
    }
    printf("primes %" PRIu64 " of %ld, sum %016" PRIx64 " mix %016" PRIx64 "\n", count, n, sum,
           mix);
    return 0;
}
