#include "util/parallel.h"

#include <pthread.h>
#include <stdatomic.h>

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
    int n_tasks;
    atomic_int next; /* the next task nobody has taken */
} loop;

typedef struct {
    loop *l;
    int thread;
} worker;

/* Tasks are taken one at a time rather than dealt out in advance: a thread slowed by
 * another process (or by geolrp's own reader and writer) then takes fewer, instead of the
 * others waiting for it. Which thread runs a task never changes its result. */
static void *run_worker(void *arg)
{
    worker *w = arg;
    loop *l = w->l;
    for (int t; (t = atomic_fetch_add(&l->next, 1)) < l->n_tasks;)
        l->fn(l->ctx, t, w->thread);
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
    loop l = {fn, ctx, n_tasks, 0};
    int started = 1;
    for (int k = 0; k < threads; k++)
        w[k] = (worker){&l, k};
    for (int k = 1; k < threads; k++) {
        if (pthread_create(&ids[k], NULL, run_worker, &w[k]) != 0)
            break; /* fewer threads: the caller takes their tasks */
        started++;
    }
    run_worker(&w[0]); /* thread 0 is the caller */
    for (int k = 1; k < started; k++)
        pthread_join(ids[k], NULL);
}
