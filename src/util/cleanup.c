#include "util/cleanup.h"

#include <signal.h>
#include <string.h>
#include <unistd.h>

#define SLOTS 64
#define PATH_MAX_LEN 4096

/* Fixed storage: the handler may only touch memory that is always valid. */
static char paths[SLOTS][PATH_MAX_LEN];
static volatile sig_atomic_t used[SLOTS];

static void on_signal(int sig)
{
    for (int k = 0; k < SLOTS; k++)
        if (used[k])
            unlink(paths[k]);
    _exit(sig == SIGINT ? 130 : 143);
}

void cleanup_install_handlers(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

int cleanup_register(const char *path)
{
    if (strlen(path) >= PATH_MAX_LEN)
        return -1;
    for (int k = 0; k < SLOTS; k++)
        if (!used[k]) {
            memcpy(paths[k], path, strlen(path) + 1);
            used[k] = 1;
            return 0;
        }
    return -1;
}

void cleanup_release(const char *path)
{
    for (int k = 0; k < SLOTS; k++)
        if (used[k] && strcmp(paths[k], path) == 0) {
            used[k] = 0;
            return;
        }
}
