/* Copy stdin to stdout until end of input, then report the byte count on stderr. */
#include <stdio.h>

int main(void) {
    char buffer[100];
    size_t total = 0;
    size_t got;
    while ((got = fread(buffer, 1, sizeof buffer, stdin)) > 0) {
        fwrite(buffer, 1, got, stdout);
        total += got;
    }
    fprintf(stderr, "read %zu bytes, eof=%d\n", total, feof(stdin) != 0);
    return 0;
}
