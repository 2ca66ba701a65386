#include "pipeline/shard.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"

#define MAX_SHARDS 1000000L

static int parse_long(const char *s, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || s[0] == '+' || s[0] == ' ')
        return -1;
    *out = v;
    return 0;
}

int shard_parse(const char *opt, const char *s, shard_spec *out, glrp_error *err)
{
    const char *slash = strchr(s, '/');
    char a[32];
    long i, n;
    if (!slash || (size_t)(slash - s) >= sizeof a)
        return glrp_fail(err, GLRP_ERR_INPUT, "%s: '%s' is not I/N (e.g. 0/4)", opt, s);
    snprintf(a, sizeof a, "%.*s", (int)(slash - s), s);
    if (parse_long(a, &i) || parse_long(slash + 1, &n))
        return glrp_fail(err, GLRP_ERR_INPUT, "%s: '%s' is not I/N (e.g. 0/4)", opt, s);
    if (n < 1 || n > MAX_SHARDS)
        return glrp_fail(err, GLRP_ERR_INPUT, "%s %s: N must be from 1 to %ld", opt, s,
                         MAX_SHARDS);
    if (i < 0 || i >= n)
        return glrp_fail(err, GLRP_ERR_INPUT, "%s %s: I must be from 0 to N-1 = %ld (shards "
                         "count from 0)", opt, s, n - 1);
    out->set = 1, out->index = i, out->count = n;
    snprintf(out->source, sizeof out->source, "%s", opt);
    return 0;
}

/* An integer environment variable: 1 when unset, 0 when read, else an error. */
static int env_long(const char *name, long *out, glrp_error *err)
{
    const char *v = getenv(name);
    if (!v)
        return 1;
    if (parse_long(v, out))
        return -glrp_fail(err, GLRP_ERR_INPUT, "%s='%s' is not an integer", name, v);
    return 0;
}

int shard_from_env(shard_spec *out, glrp_error *err)
{
    long id = 0, count = 0, min = 0, max = 0, step = 1;
    int r;
    out->set = 0;
    if ((r = env_long("SLURM_ARRAY_TASK_ID", &id, err)) != 0)
        return r < 0 ? GLRP_ERR_INPUT : 0;
    if (env_long("SLURM_ARRAY_TASK_MIN", &min, err) < 0 ||
        env_long("SLURM_ARRAY_TASK_STEP", &step, err) < 0)
        return GLRP_ERR_INPUT;
    if (step < 1)
        return glrp_fail(err, GLRP_ERR_INPUT, "SLURM_ARRAY_TASK_STEP=%ld must be at least 1",
                         step);
    if ((r = env_long("SLURM_ARRAY_TASK_COUNT", &count, err)) < 0)
        return GLRP_ERR_INPUT;
    if (r == 1) {
        if ((r = env_long("SLURM_ARRAY_TASK_MAX", &max, err)) < 0)
            return GLRP_ERR_INPUT;
        if (r == 1)
            return glrp_fail(err, GLRP_ERR_INPUT, "SLURM_ARRAY_TASK_ID is set but neither "
                             "SLURM_ARRAY_TASK_COUNT nor SLURM_ARRAY_TASK_MAX: cannot tell "
                             "the number of shards; give I/N explicitly (--shard or --part)");
        if (max < min)
            return glrp_fail(err, GLRP_ERR_INPUT, "SLURM_ARRAY_TASK_MAX=%ld is below "
                             "SLURM_ARRAY_TASK_MIN=%ld", max, min);
        count = (max - min) / step + 1;
    }
    if (count < 1 || count > MAX_SHARDS)
        return glrp_fail(err, GLRP_ERR_INPUT, "SLURM_ARRAY_TASK_COUNT=%ld must be from 1 to "
                         "%ld", count, MAX_SHARDS);
    if (id < min || (id - min) % step != 0 || (id - min) / step >= count)
        return glrp_fail(err, GLRP_ERR_INPUT, "SLURM_ARRAY_TASK_ID=%ld is not one of %ld "
                         "evenly spaced tasks from SLURM_ARRAY_TASK_MIN=%ld (step %ld): use "
                         "a plain range such as --array=0-%ld, or give I/N explicitly (--shard or --part)", id,
                         count, min, step, count - 1);
    out->set = 1;
    out->index = (id - min) / step;
    out->count = count;
    snprintf(out->source, sizeof out->source, "SLURM_ARRAY_TASK_ID=%ld", id);
    return 0;
}
