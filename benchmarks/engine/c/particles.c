/* particles: 128 particles pulled toward a centre and by gravity, bouncing off the floor
 * and two walls, integrated in single precision for STEPS steps.
 * Stresses f32 arithmetic (every operation rounded to single), sqrtf and branches.
 * usage: particles STEPS   (prints the summed positions, kinetic energy and a hash of
 *                           the float bits) */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N 128

static float px[N], py[N], vx[N], vy[N];

static void step(float dt)
{
    for (int i = 0; i < N; i++) {
        float dx = px[i] - 4.0f;
        float dy = py[i] - 3.0f;
        float r = sqrtf(dx * dx + dy * dy) + 0.1f;
        float pull = 0.5f / r;
        vx[i] = (vx[i] - dx * pull * dt) * 0.999f;
        vy[i] = (vy[i] - (9.8f + dy * pull) * dt) * 0.999f;
        px[i] += vx[i] * dt;
        py[i] += vy[i] * dt;
        if (py[i] < 0.0f) {
            py[i] = -py[i];
            vy[i] = -vy[i] * 0.8f;
        }
        if (px[i] < 0.0f) {
            px[i] = -px[i];
            vx[i] = -vx[i];
        } else if (px[i] > 8.0f) {
            px[i] = 16.0f - px[i];
            vx[i] = -vx[i];
        }
    }
}

static uint32_t bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

int main(int argc, char **argv)
{
    int steps = argc > 1 ? atoi(argv[1]) : 100;
    for (int i = 0; i < N; i++) {
        px[i] = (float)(i % 16) * 0.5f;
        py[i] = (float)(i / 16) * 0.75f + 1.0f;
        vx[i] = ((float)(i % 7) - 3.0f) * 0.1f;
        vy[i] = ((float)(i % 5) - 2.0f) * 0.2f;
    }
    for (int s = 0; s < steps; s++)
        step(0.01f);
    float sx = 0.0f, sy = 0.0f, energy = 0.0f;
    uint32_t hash = 0;
    for (int i = 0; i < N; i++) {
        sx += px[i];
        sy += py[i];
        energy += 0.5f * (vx[i] * vx[i] + vy[i] * vy[i]);
        hash = (hash ^ bits(px[i])) * 16777619u;
        hash = (hash ^ bits(vy[i])) * 16777619u;
    }
    printf("particles(%d) x %.6f y %.6f energy %.6f hash %08x\n", steps, (double)sx, (double)sy,
           (double)energy, hash);
    return 0;
}
