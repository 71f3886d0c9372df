/* Leave through exit() with a code: stdio is flushed first, then proc_exit(7). */
#include <stdio.h>
#include <stdlib.h>

int main(void) {
    printf("about to exit");
    fprintf(stderr, "exiting with 7\n");
    exit(7);
}
