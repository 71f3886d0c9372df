/* printf to stdout and stderr, interleaved; stdout ends without a newline so it is only
   flushed at exit. */
#include <stdio.h>

int main(void) {
    printf("hello, stdout\n");
    fprintf(stderr, "hello, stderr\n");
    printf("%d %s %.3f %c\n", 42, "kindling", 2.5, 'x');
    fputs("caf\xc3\xa9 \xe2\x98\x95\n", stderr);
    printf("no newline at the end");
    return 0;
}
