/* matmul: naive N x N matrix product C = A * B in float64, then a checksum of C.
 * Stresses f64 multiply-add in a tight triple loop with array indexing.
 * usage: matmul N          (prints the sum and the trace of C, %.6f) */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 100;
    double *a = malloc(sizeof(double) * (size_t)n * (size_t)n);
    double *b = malloc(sizeof(double) * (size_t)n * (size_t)n);
    double *c = malloc(sizeof(double) * (size_t)n * (size_t)n);
    if (!a || !b || !c)
        return 2;

    for (int i = 0; i < n; i++) {
        for (int j = 0; j < n; j++) {
            a[i * n + j] = (double)((i * 7 + j * 3) % 17) / 16.0 - 0.5;
            b[i * n + j] = (double)((i * 5 + j * 11) % 13) / 12.0 - 0.25;
        }
    }

    for (int i = 0; i < n; i++) {
        for (int j = 0; j < n; j++) {
            double s = 0.0;
            for (int k = 0; k < n; k++)
                s += a[i * n + k] * b[k * n + j];
            c[i * n + j] = s;
        }
    }

    double total = 0.0, trace = 0.0;
    for (int i = 0; i < n; i++) {
        trace += c[i * n + i];
        for (int j = 0; j < n; j++)
            total += c[i * n + j];
    }
    printf("matmul(%d) sum %.6f trace %.6f\n", n, total, trace);
    free(a);
    free(b);
    free(c);
    return 0;
}
