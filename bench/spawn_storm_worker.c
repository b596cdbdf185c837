/* spawn_storm_worker: fork+exec a short program N times, as fast as possible,
 * and record for each child: pid, CLOCK_MONOTONIC ns before fork and after reap.
 * Used by spawn_storm.sh; the times let the analysis attribute kernel events
 * (whose timestamps are CLOCK_MONOTONIC) to the right child despite PID reuse. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>

static unsigned long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (unsigned long long)ts.tv_sec * 1000000000ull + (unsigned long long)ts.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s COUNT PROGRAM OUTFILE\n", argv[0]);
        return 2;
    }
    long count = strtol(argv[1], NULL, 10);
    char *prog = argv[2];
    FILE *out = fopen(argv[3], "w");
    if (!out || count <= 0) {
        perror("spawn_storm_worker");
        return 2;
    }
    unsigned long long *rec = malloc(sizeof(unsigned long long) * 3 * (size_t)count);
    if (!rec) return 2;
    char *const child_argv[] = {prog, NULL};
    long failures = 0;
    for (long i = 0; i < count; i++) {
        unsigned long long t0 = now_ns();
        pid_t pid = fork();
        if (pid == 0) {
            execv(prog, child_argv);
            _exit(127);
        }
        if (pid < 0) { failures++; continue; }
        int st;
        while (waitpid(pid, &st, 0) < 0) {}
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) failures++;
        rec[3 * i] = (unsigned long long)pid;
        rec[3 * i + 1] = t0;
        rec[3 * i + 2] = now_ns();
    }
    fprintf(out, "worker %d\n", (int)getpid());
    for (long i = 0; i < count; i++)
        fprintf(out, "%llu %llu %llu\n", rec[3 * i], rec[3 * i + 1], rec[3 * i + 2]);
    fclose(out);
    return failures ? 1 : 0;
}
