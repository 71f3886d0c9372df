/* hello: Kindling's demo guest.  A WASI command that greets, shows the arguments it was given,
 * and does a little real work (counting primes with a sieve), so `kindling run
 * examples/hello.wasm [ARGS...]` shows a real WebAssembly program running in its own process.
 * Built by tests/fixtures/build.sh; the .wasm is committed so the demo needs no C compiler. */
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    printf("Hello from a WebAssembly guest running under Kindling!\n");
    for (int i = 1; i < argc; i++)
        printf("argument %d: %s\n", i, argv[i]);

    enum { LIMIT = 10000 };
    static unsigned char composite[LIMIT + 1];
    memset(composite, 0, sizeof composite);
    int primes = 0;
    for (int n = 2; n <= LIMIT; n++) {
        if (composite[n])
            continue;
        primes++;
        for (int k = n * n; k <= LIMIT; k += n)
            composite[k] = 1;
    }
    printf("There are %d primes below %d.\n", primes, LIMIT);
    return 0;
}
