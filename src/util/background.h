/*
 * One job at a time on a thread of its own, so that reading the next stripe and writing
 * finished rows overlap the LRP of the current one (libvips's write-behind, for reads
 * too). The caller hands over a job, goes on, and collects the job's result before it
 * hands over the next one, so jobs run in the order given and the data a job owns is
 * never touched by two threads at once.
 *
 * A zeroed background (or one whose thread could not start) runs each job inline in
 * bg_submit: same results, no overlap.
 */
#ifndef GLRP_UTIL_BACKGROUND_H
#define GLRP_UTIL_BACKGROUND_H

#include <pthread.h>

typedef int (*bg_fn)(void *arg);

typedef struct {
    pthread_t thread;
    pthread_mutex_t mutex;
    pthread_cond_t changed;
    int started; /* the thread runs */
    int pending; /* a job was handed over and its result not yet collected */
    int running; /* the thread has not finished that job */
    int stop;
    bg_fn fn;
    void *arg;
    int rc;
} background;

/* Starts the thread; on failure b stays inline (and still works). */
void bg_start(background *b);
/* Hands fn(arg) over; the previous job's result must have been collected (bg_wait). */
void bg_submit(background *b, bg_fn fn, void *arg);
/* Waits for the job handed over last and returns its result (0 when there is none). */
int bg_wait(background *b);
/* Waits for the current job, ends the thread; b is zeroed (inline) afterwards. */
void bg_stop(background *b);

#endif
