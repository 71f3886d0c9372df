/* imatmul: a 32 x 32 int32 matrix product in i-k-j order, ROUNDS times, one element of A
 * changing between rounds. With -msimd128 clang unrolls the inner j loop into i32x4.mul and
 * i32x4.add of a splat of A[i][k] with rows of B.
 * usage: imatmul ROUNDS   (prints a hash of every product) */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define N 32
static int32_t a[N][N], b[N][N], c[N][N];

static void matmul(void)
{
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < N; j++)
            c[i][j] = 0;
        for (int k = 0; k < N; k++) {
            int32_t aik = a[i][k];
            for (int j = 0; j < N; j++)
                c[i][j] += aik * b[k][j];
        }
    }
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 10;
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            a[i][j] = (i * 7 + j * 3) % 17 - 8;
            b[i][j] = (i * 5 + j * 11) % 13 - 6;
        }
    uint32_t hash = 0;
    for (int r = 0; r < rounds; r++) {
        matmul();
        for (int i = 0; i < N; i++)
            for (int j = 0; j < N; j++)
                hash = hash * 31u + (uint32_t)c[i][j];
        a[r % N][(r * 7) % N] += 1;
    }
    printf("imatmul(%d) hash %08x\n", rounds, hash);
    return 0;
}
