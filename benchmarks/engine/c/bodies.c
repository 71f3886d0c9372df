/* bodies: 12 bodies of an array of structs pull on each other (softened gravity) and are
 * integrated in float64 for STEPS steps; pairs are walked with struct pointers.
 * Stresses f64 loads and stores at field offsets of a struct, sqrt, division.
 * usage: bodies STEPS      (prints the energy before and after, %.9f, and the momentum) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define COUNT 12

struct body {
    double x, y, z;
    double vx, vy, vz;
    double ax, ay, az;
    double mass;
};

static struct body bodies[COUNT];

static void setup(void)
{
    for (int i = 0; i < COUNT; i++) {
        struct body *b = &bodies[i];
        double r = 1.0 + 0.5 * i;
        b->x = r * ((i % 3) - 1.0);
        b->y = r * (((i / 3) % 3) - 1.0) + 0.25;
        b->z = 0.1 * i - 0.5;
        b->vx = 0.05 * ((i % 4) - 1.5);
        b->vy = 0.03 * ((i % 5) - 2.0);
        b->vz = 0.01 * i;
        b->mass = 1.0 + (i % 4) * 0.25;
    }
}

static void accelerate(void)
{
    struct body *end = bodies + COUNT;
    for (struct body *b = bodies; b < end; b++)
        b->ax = b->ay = b->az = 0.0;
    for (struct body *b = bodies; b < end; b++) {
        for (struct body *o = b + 1; o < end; o++) {
            double dx = o->x - b->x;
            double dy = o->y - b->y;
            double dz = o->z - b->z;
            double d2 = dx * dx + dy * dy + dz * dz + 0.01;
            double inv = 1.0 / (d2 * sqrt(d2));
            b->ax += dx * o->mass * inv;
            b->ay += dy * o->mass * inv;
            b->az += dz * o->mass * inv;
            o->ax -= dx * b->mass * inv;
            o->ay -= dy * b->mass * inv;
            o->az -= dz * b->mass * inv;
        }
    }
}

static void step(double dt)
{
    accelerate();
    for (struct body *b = bodies; b < bodies + COUNT; b++) {
        b->vx += b->ax * dt;
        b->vy += b->ay * dt;
        b->vz += b->az * dt;
        b->x += b->vx * dt;
        b->y += b->vy * dt;
        b->z += b->vz * dt;
    }
}

static double energy(void)
{
    double e = 0.0;
    for (int i = 0; i < COUNT; i++) {
        const struct body *b = &bodies[i];
        e += 0.5 * b->mass * (b->vx * b->vx + b->vy * b->vy + b->vz * b->vz);
        for (int j = i + 1; j < COUNT; j++) {
            const struct body *o = &bodies[j];
            double dx = o->x - b->x;
            double dy = o->y - b->y;
            double dz = o->z - b->z;
            e -= b->mass * o->mass / sqrt(dx * dx + dy * dy + dz * dz + 0.01);
        }
    }
    return e;
}

int main(int argc, char **argv)
{
    int steps = argc > 1 ? atoi(argv[1]) : 100;
    setup();
    double before = energy();
    for (int s = 0; s < steps; s++)
        step(0.001);
    double after = energy();
    double px = 0.0, py = 0.0, pz = 0.0;
    for (int i = 0; i < COUNT; i++) {
        px += bodies[i].mass * bodies[i].vx;
        py += bodies[i].mass * bodies[i].vy;
        pz += bodies[i].mass * bodies[i].vz;
    }
    printf("bodies(%d) energy %.9f -> %.9f momentum %.9f %.9f %.9f\n", steps, before, after, px, py,
           pz);
    return 0;
}
