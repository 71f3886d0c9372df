/* shout: the demo function of `kindling serve` (README).  A WAGI/CGI command: it reads the
 * request body from stdin and answers it in capitals, with the request's method and path.
 * Built by tests/fixtures/build.sh; the .wasm is committed so the demo needs no C compiler. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>

int main(void)
{
    const char *method = getenv("REQUEST_METHOD");
    const char *path = getenv("PATH_INFO");
    printf("Content-Type: text/plain\n\n");
    printf("%s %s: ", method ? method : "?", path ? path : "?");
    int c;
    while ((c = getchar()) != EOF)
        putchar(toupper(c));
    putchar('\n');
    return 0;
}
