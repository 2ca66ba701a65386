#include "util/parallel.h"

#include <pthread.h>

static int g_threads = 1;

void parallel_set_threads(int n)
{
    g_threads = n < 1 ? 1 : n > 256 ? 256 : n;
}

int parallel_threads(void)
{
    return g_threads;
}

typedef struct {
    parallel_fn fn;
    void *ctx;
    int n_tasks, stride, thread;
} worker;

static void *run_worker(void *arg)
{
    worker *w = arg;
    for (int t = w->thread; t < w->n_tasks; t += w->stride)
        w->fn(w->ctx, t, w->thread);
    return NULL;
}

void parallel_for(int n_tasks, parallel_fn fn, void *ctx)
{
    int threads = g_threads < n_tasks ? g_threads : n_tasks;
    if (threads <= 1) {
        for (int t = 0; t < n_tasks; t++)
            fn(ctx, t, 0);
        return;
    }
    pthread_t ids[256];
    worker w[256];
    int started = 1;
    for (int k = 0; k < threads; k++)
        w[k] = (worker){fn, ctx, n_tasks, threads, k};
    for (int k = 1; k < threads; k++) {
        if (pthread_create(&ids[k], NULL, run_worker, &w[k]) != 0)
            break; /* fewer threads: the tasks of the missing ones run below */
        started++;
    }
    /* Thread 0 is the caller; tasks of threads that failed to start run here too. */
    for (int k = 0; k < threads; k++)
        if (k == 0 || k >= started)
            run_worker(&w[k]);
    for (int k = 1; k < started; k++)
        pthread_join(ids[k], NULL);
}
