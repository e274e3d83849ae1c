/* trap.wasm: prints "about to trap", then executes `unreachable`. */
#include <stdio.h>

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);

    printf("about to trap\n");
    fflush(stdout);
    __builtin_trap();
}
