/* stderr.wasm: writes "to stdout" on stdout and "to stderr" on stderr, exits 0. */
#include <stdio.h>

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);

    printf("to stdout\n");
    fflush(stdout);
    fprintf(stderr, "to stderr\n");
    fflush(stderr);
    return 0;
}
