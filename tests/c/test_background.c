/* The background job runner (util/background.c): jobs run in the order handed over, each
 * result comes back to the caller, a job really runs while the caller goes on, and a
 * zeroed runner does the same work inline. */
#include <errno.h>
#include <semaphore.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "util/background.h"

typedef struct {
    int order[16], n;
    int value, rc;
} log_job;

static log_job shared;

static int record(void *arg)
{
    log_job *j = arg;
    shared.order[shared.n++] = j->value;
    return j->rc;
}

static void test_order_and_results(void)
{
    background b;
    bg_start(&b);
    CHECK(b.started);
    memset(&shared, 0, sizeof shared);
    log_job jobs[8];
    for (int k = 0; k < 8; k++) {
        jobs[k] = (log_job){.value = k, .rc = k == 5 ? 7 : 0};
        bg_submit(&b, record, &jobs[k]);
        CHECK(bg_wait(&b) == (k == 5 ? 7 : 0));
    }
    CHECK(bg_wait(&b) == 0); /* nothing pending */
    CHECK(shared.n == 8);
    for (int k = 0; k < 8; k++)
        CHECK(shared.order[k] == k);
    bg_stop(&b);
    CHECK(!b.started);
}

static void test_inline_when_not_started(void)
{
    background b;
    memset(&b, 0, sizeof b);
    memset(&shared, 0, sizeof shared);
    log_job j = {.value = 3, .rc = 9};
    bg_submit(&b, record, &j);
    CHECK(shared.n == 1); /* done before bg_submit returned */
    CHECK(bg_wait(&b) == 9);
    bg_stop(&b); /* harmless */
}

/* The job waits for the caller to signal after bg_submit returned: only a job that runs on
 * its own thread can see that signal (inline, it would time out and fail). */
typedef struct {
    sem_t go;
} overlap_job;

static int wait_for_caller(void *arg)
{
    overlap_job *j = arg;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 30;
    int r;
    while ((r = sem_timedwait(&j->go, &until)) != 0 && errno == EINTR)
        ;
    return r == 0 ? 0 : 1;
}

static void test_job_overlaps_caller(void)
{
    background b;
    bg_start(&b);
    overlap_job j;
    sem_init(&j.go, 0, 0);
    bg_submit(&b, wait_for_caller, &j);
    sem_post(&j.go);
    CHECK(bg_wait(&b) == 0);
    bg_stop(&b);
    sem_destroy(&j.go);
}

static void test_stop_waits_for_the_job(void)
{
    background b;
    bg_start(&b);
    memset(&shared, 0, sizeof shared);
    log_job j = {.value = 1};
    bg_submit(&b, record, &j);
    bg_stop(&b); /* without bg_wait: the job still completes before the thread ends */
    CHECK(shared.n == 1);
}

int main(void)
{
    RUN(test_order_and_results);
    RUN(test_inline_when_not_started);
    RUN(test_job_overlaps_caller);
    RUN(test_stop_waits_for_the_job);
    return check_report();
}
