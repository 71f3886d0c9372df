/* matikj: dense N x N matrix products in i-k-j order through row pointers, once in wrapping
 * uint32 and once in float64, then checksums of both results.
 * Stresses what clang -O2 makes of an i-k-j kernel: an unrolled inner loop walking two rows
 * by pointer (multiply-add of a loaded value into a stored one), and memset for the zeroing.
 * usage: matikj N          (prints a hash of the integer product and the float sum, trace) */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static void product_u32(uint32_t *c, const uint32_t *a, const uint32_t *b, int n)
{
    for (int i = 0; i < n; i++) {
        uint32_t *ci = c + (size_t)i * n;
        const uint32_t *ai = a + (size_t)i * n;
        for (int j = 0; j < n; j++)
            ci[j] = 0;
        for (int k = 0; k < n; k++) {
            uint32_t aik = ai[k];
            const uint32_t *bk = b + (size_t)k * n;
            for (int j = 0; j < n; j++)
                ci[j] += aik * bk[j];
        }
    }
}

static void product_f64(double *c, const double *a, const double *b, int n)
{
    for (int i = 0; i < n; i++) {
        double *ci = c + (size_t)i * n;
        const double *ai = a + (size_t)i * n;
        for (int j = 0; j < n; j++)
            ci[j] = 0.0;
        for (int k = 0; k < n; k++) {
            double aik = ai[k];
            const double *bk = b + (size_t)k * n;
            for (int j = 0; j < n; j++)
                ci[j] += aik * bk[j];
        }
    }
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 60;
    size_t cells = (size_t)n * (size_t)n;
    uint32_t *ia = malloc(sizeof(uint32_t) * cells);
    uint32_t *ib = malloc(sizeof(uint32_t) * cells);
    uint32_t *ic = malloc(sizeof(uint32_t) * cells);
    double *fa = malloc(sizeof(double) * cells);
    double *fb = malloc(sizeof(double) * cells);
    double *fc = malloc(sizeof(double) * cells);
    if (!ia || !ib || !ic || !fa || !fb || !fc)
        return 2;

    uint32_t x = 0x9E3779B9u;
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < n; j++) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            ia[i * n + j] = x;
            ib[j * n + i] = x * 2654435761u + (uint32_t)j;
            fa[i * n + j] = (double)(x % 2001u) / 1000.0 - 1.0;
            fb[j * n + i] = (double)((x >> 11) % 999u) / 500.0 - 0.999;
        }
    }

    product_u32(ic, ia, ib, n);
    product_f64(fc, fa, fb, n);

    uint32_t hash = 2166136261u;
    double sum = 0.0, trace = 0.0;
    for (int i = 0; i < n; i++) {
        trace += fc[i * n + i];
        for (int j = 0; j < n; j++) {
            hash = (hash ^ ic[i * n + j]) * 16777619u;
            sum += fc[i * n + j];
        }
    }
    printf("matikj(%d) hash %08x sum %.6f trace %.6f\n", n, hash, sum, trace);
    free(ia);
    free(ib);
    free(ic);
    free(fa);
    free(fb);
    free(fc);
    return 0;
}
