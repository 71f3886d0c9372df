/* Echo argc, every argv entry and every environment entry, then look one variable up. */
#include <stdio.h>
#include <stdlib.h>

extern char **environ;

int main(int argc, char **argv) {
    printf("argc=%d\n", argc);
    for (int i = 0; i < argc; i++) {
        printf("argv[%d]=[%s]\n", i, argv[i]);
    }
    int count = 0;
    for (char **entry = environ; *entry != NULL; entry++) {
        printf("env[%d]=[%s]\n", count++, *entry);
    }
    const char *greeting = getenv("KINDLING_GREETING");
    printf("getenv=[%s]\n", greeting ? greeting : "(unset)");
    return 0;
}
