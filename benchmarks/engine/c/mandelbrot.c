/* mandelbrot: escape-time iteration over a W x W grid of the complex plane in float64.
 * Stresses f64 arithmetic, compares and a data-dependent inner loop exit.
 * usage: mandelbrot W      (prints points inside, total iterations and a hash) */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define MAX_ITER 64

int main(int argc, char **argv)
{
    int w = argc > 1 ? atoi(argv[1]) : 100;
    uint32_t inside = 0, total = 0, hash = 0;
    for (int y = 0; y < w; y++) {
        double ci = 2.0 * y / w - 1.0;
        for (int x = 0; x < w; x++) {
            double cr = 2.5 * x / w - 2.0;
            double zr = 0.0, zi = 0.0;
            int it = 0;
            while (it < MAX_ITER) {
                double zr2 = zr * zr;
                double zi2 = zi * zi;
                if (zr2 + zi2 > 4.0)
                    break;
                zi = 2.0 * zr * zi + ci;
                zr = zr2 - zi2 + cr;
                it++;
            }
            total += (uint32_t)it;
            if (it == MAX_ITER)
                inside++;
            hash = hash * 31u + (uint32_t)it;
        }
    }
    printf("mandelbrot(%d) inside %u iterations %u hash %08x\n", w, inside, total, hash);
    return 0;
}
