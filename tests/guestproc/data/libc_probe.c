/* libc functions that reach WASI beyond the console: clocks, randomness, sleeping, poll,
   seeking a stream, opening a file without preopens, and descriptor bookkeeping. Prints
   only what any capability-less WASI host must answer the same way. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void report(const char *what, int ok) { printf("%s: %s\n", what, ok ? "ok" : "FAILED"); }

int main(void) {
    struct timespec real, mono1, mono2;
    report("realtime after 2020", clock_gettime(CLOCK_REALTIME, &real) == 0 && real.tv_sec > 1577836800);
    clock_gettime(CLOCK_MONOTONIC, &mono1);

    struct timespec nap = {0, 2000000};
    report("nanosleep 2ms", nanosleep(&nap, NULL) == 0);
    clock_gettime(CLOCK_MONOTONIC, &mono2);
    long long slept = (mono2.tv_sec - mono1.tv_sec) * 1000000000LL + (mono2.tv_nsec - mono1.tv_nsec);
    report("monotonic advanced by the sleep", slept >= 2000000);

    unsigned char random_a[32] = {0}, random_b[32] = {0};
    report("getentropy", getentropy(random_a, sizeof random_a) == 0 && getentropy(random_b, sizeof random_b) == 0);
    report("random bytes differ", memcmp(random_a, random_b, sizeof random_a) != 0);

    struct pollfd poll_stdout = {1, POLLOUT, 0};
    report("poll stdout writable", poll(&poll_stdout, 1, 0) == 1 && (poll_stdout.revents & POLLOUT));

    errno = 0;
    off_t where = lseek(1, 0, SEEK_CUR);
    printf("lseek(stdout): %lld %s\n", (long long)where, strerror(errno));

    errno = 0;
    int fd = open("/etc/passwd", O_RDONLY);
    printf("open(/etc/passwd): %d %s\n", fd, strerror(errno));

    errno = 0;
    int closed = close(7);
    printf("close(7): %d %s\n", closed, strerror(errno));

    errno = 0;
    ssize_t wrote = write(0, "x", 1);
    printf("write(stdin): %zd %s\n", wrote, strerror(errno));

    fflush(stdout);
    close(2);
    errno = 0;
    wrote = write(2, "gone\n", 5);
    printf("write(closed stderr): %zd %s\n", wrote, strerror(errno));
    return 0;
}
