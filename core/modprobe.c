/* modprobe.c - load a kernel module by running modprobe, quietly.
 *
 * posix_spawn rather than fork: the daemon has threads and possibly a large
 * address space. The exit status is reported but callers look at sysfs or
 * configfs afterwards: that is what counts (a built-in module makes modprobe
 * succeed or fail depending on the system, and the feature is there either
 * way).
 *
 * This Source Code Form is subject to the terms of the Mozilla Public License,
 * v. 2.0. If a copy of the MPL was not distributed with this file, You can
 * obtain one at https://mozilla.org/MPL/2.0/.
 */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include "modprobe.h"

extern char **environ;

int usbd_modprobe(const char *module, int *status)
{
    static const char *const candidates[] = {"/sbin/modprobe", "/usr/sbin/modprobe",
                                             "/bin/modprobe", "/usr/bin/modprobe"};
    const char *prog = "modprobe"; /* last resort: $PATH */
    for (size_t i = 0; i < sizeof candidates / sizeof candidates[0]; i++) {
        if (access(candidates[i], X_OK) == 0) {
            prog = candidates[i];
            break;
        }
    }
    posix_spawn_file_actions_t fa;
    int err = posix_spawn_file_actions_init(&fa);
    if (err)
        return err;
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    char *argv[] = {(char *)prog, (char *)module, NULL};
    pid_t pid;
    err = posix_spawnp(&pid, prog, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (err)
        return err;
    int st = 0;
    /* ECHILD (SIGCHLD ignored by the application): modprobe has finished
     * anyway by the time waitpid gives up. */
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return 0;
}
