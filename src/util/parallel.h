/*
 * A parallel loop over independent tasks with plain pthreads. Results never depend on the
 * thread count: tasks are fixed units of work (one sample, one chunk of rows) whose
 * arithmetic is the same whichever thread runs them, and BLAS itself runs single-threaded
 * inside each task (multi-threaded sgemm splits its sums differently per thread count).
 */
#ifndef GLRP_UTIL_PARALLEL_H
#define GLRP_UTIL_PARALLEL_H

void parallel_set_threads(int n);
int parallel_threads(void);

/* Runs fn(ctx, task, thread) for task in [0, n_tasks); thread < parallel_threads(). */
typedef void (*parallel_fn)(void *ctx, int task, int thread);
void parallel_for(int n_tasks, parallel_fn fn, void *ctx);

#endif
