/* exit_code.wasm: prints "exiting with N" and exits with status N, where N is
 * atoi(argv[1]), 3 when no argument is given. */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);

    int code = argc > 1 ? atoi(argv[1]) : 3;
    printf("exiting with %d\n", code);
    fflush(stdout);
    exit(code);
}
