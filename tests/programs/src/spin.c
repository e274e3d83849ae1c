/* spin.wasm: prints "spinning", then loops forever without calling the host.
 * Tests that a runtime can stop a module that never yields (fuel, epochs). The
 * volatile counter keeps the compiler from removing the loop. */
#include <stdio.h>

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);

    printf("spinning\n");
    fflush(stdout);

    volatile unsigned long counter = 0;
    for (;;) {
        counter = counter + 1;
    }
}
