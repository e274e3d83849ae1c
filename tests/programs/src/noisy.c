/* noisy.wasm: prints "line N" for N from 1 to argv[1] (default 20000) as fast
 * as it can, then exits 0. For output throughput benchmarks. */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);

    long count = argc > 1 ? atol(argv[1]) : 20000;
    for (long n = 1; n <= count; n++) {
        printf("line %ld\n", n);
        fflush(stdout);
    }
    return 0;
}
