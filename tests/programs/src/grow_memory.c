/* grow_memory.wasm: grows linear memory by 1 MiB (16 pages) at a time until the
 * host refuses, then prints two lines and exits 0:
 *   grew to N MiB                 (linear memory size after the last grow that worked)
 *   memory grow failed at M MiB   (the size the refused grow asked for)
 * Sizes are whole MiB, rounded down. Tests the runtime's memory limit. */
#include <stddef.h>
#include <stdio.h>

#define PAGES_PER_MIB 16

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);

    for (;;) {
        unsigned long pages = __builtin_wasm_memory_size(0);
        /* memory.grow answers the old size in pages, or (size_t)-1 when refused. */
        if (__builtin_wasm_memory_grow(0, PAGES_PER_MIB) == (size_t)-1) {
            printf("grew to %lu MiB\n", pages / PAGES_PER_MIB);
            printf("memory grow failed at %lu MiB\n", (pages + PAGES_PER_MIB) / PAGES_PER_MIB);
            fflush(stdout);
            return 0;
        }
    }
}
