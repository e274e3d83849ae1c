/* echo.wasm: reads stdin line by line and writes "echo: <line>" for each line;
 * exits 0 at end of input. A last line without a newline is echoed too. */
#include <stdio.h>
#include <string.h>

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);

    static char line[65536]; /* static: the default stack is only 64 KiB */
    while (fgets(line, sizeof line, stdin) != NULL) {
        size_t len = strlen(line);
        if (len > 0 && line[len - 1] == '\n') {
            line[--len] = '\0';
        }
        printf("echo: %s\n", line);
        fflush(stdout);
    }
    return 0;
}
