/* saxpy: y = a*x + y in single precision over two arrays of 1024 floats, alternating
 * which array is updated, for ROUNDS rounds. clang vectorises the loop into f32x4.mul and
 * f32x4.add with -msimd128; every lane is rounded to single as the scalar build rounds it.
 * usage: saxpy ROUNDS   (prints the sum of x + y and a hash of y's float bits) */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N 1024

static float x[N], y[N];

static void saxpy(float a, const float *restrict xs, float *restrict ys, int n)
{
    for (int i = 0; i < n; i++)
        ys[i] = a * xs[i] + ys[i];
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 100;
    for (int i = 0; i < N; i++) {
        x[i] = (float)((i * 37) % 101) / 64.0f - 0.75f;
        y[i] = (float)((i * 11) % 29) / 8.0f;
    }
    for (int r = 0; r < rounds; r++) {
        saxpy(0.5f, x, y, N);
        saxpy(-0.25f, y, x, N);
    }
    double sum = 0.0;
    uint32_t hash = 2166136261u;
    for (int i = 0; i < N; i++) {
        uint32_t bits;
        memcpy(&bits, &y[i], 4);
        hash = (hash ^ bits) * 16777619u;
        sum += y[i] + x[i];
    }
    printf("saxpy(%d) sum %.6f hash %08x\n", rounds, sum, hash);
    return 0;
}
