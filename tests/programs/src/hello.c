/* hello.wasm: prints a greeting, its arguments and its environment, then exits 0.
 *
 * Output:
 *   hello from wasm
 *   argv: <arguments after argv[0], joined by spaces>
 *   env: K=V            (one line per environment variable, sorted)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

static int compare_strings(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);

    printf("hello from wasm\n");

    printf("argv:");
    for (int i = 1; i < argc; i++) {
        printf(" %s", argv[i]);
    }
    printf("\n");

    size_t count = 0;
    while (environ != NULL && environ[count] != NULL) {
        count++;
    }
    if (count > 0) {
        char **sorted = malloc(count * sizeof *sorted);
        if (sorted == NULL) {
            return 1;
        }
        memcpy(sorted, environ, count * sizeof *sorted);
        qsort(sorted, count, sizeof *sorted, compare_strings);
        for (size_t i = 0; i < count; i++) {
            printf("env: %s\n", sorted[i]);
        }
        free(sorted);
    }

    fflush(stdout);
    return 0;
}
