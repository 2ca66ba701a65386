#include "util/background.h"

#include <string.h>

static void *loop(void *arg)
{
    background *b = arg;
    pthread_mutex_lock(&b->mutex);
    for (;;) {
        while (!b->running && !b->stop)
            pthread_cond_wait(&b->changed, &b->mutex);
        if (!b->running) /* stop, and nothing left to do */
            break;
        bg_fn fn = b->fn;
        void *job = b->arg;
        pthread_mutex_unlock(&b->mutex);
        int rc = fn(job);
        pthread_mutex_lock(&b->mutex);
        b->rc = rc;
        b->running = 0;
        pthread_cond_broadcast(&b->changed);
    }
    pthread_mutex_unlock(&b->mutex);
    return NULL;
}

void bg_start(background *b)
{
    memset(b, 0, sizeof *b);
    if (pthread_mutex_init(&b->mutex, NULL))
        return;
    if (pthread_cond_init(&b->changed, NULL)) {
        pthread_mutex_destroy(&b->mutex);
        return;
    }
    b->started = 1; /* before the thread reads it */
    if (pthread_create(&b->thread, NULL, loop, b)) {
        pthread_cond_destroy(&b->changed);
        pthread_mutex_destroy(&b->mutex);
        b->started = 0;
    }
}

void bg_submit(background *b, bg_fn fn, void *arg)
{
    if (!b->started) {
        b->rc = fn(arg);
        b->pending = 1;
        return;
    }
    pthread_mutex_lock(&b->mutex);
    b->fn = fn, b->arg = arg;
    b->running = 1, b->pending = 1;
    pthread_cond_broadcast(&b->changed);
    pthread_mutex_unlock(&b->mutex);
}

int bg_wait(background *b)
{
    if (!b->pending)
        return 0;
    if (b->started) {
        pthread_mutex_lock(&b->mutex);
        while (b->running)
            pthread_cond_wait(&b->changed, &b->mutex);
        pthread_mutex_unlock(&b->mutex);
    }
    b->pending = 0;
    return b->rc;
}

void bg_stop(background *b)
{
    bg_wait(b);
    if (b->started) {
        pthread_mutex_lock(&b->mutex);
        b->stop = 1;
        pthread_cond_broadcast(&b->changed);
        pthread_mutex_unlock(&b->mutex);
        pthread_join(b->thread, NULL);
        pthread_cond_destroy(&b->changed);
        pthread_mutex_destroy(&b->mutex);
    }
    memset(b, 0, sizeof *b);
}
