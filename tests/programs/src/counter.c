/* counter.wasm: prints "count N" once a second, N from 1, forever; with an
 * argument, stops after that many lines and exits 0. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);

    long limit = argc > 1 ? atol(argv[1]) : 0;
    for (long n = 1; limit <= 0 || n <= limit; n++) {
        printf("count %ld\n", n);
        fflush(stdout);
        if (limit > 0 && n == limit) {
            break;
        }
        sleep(1);
    }
    return 0;
}
