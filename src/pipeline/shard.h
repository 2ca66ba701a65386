/*
 * Which part of the scene list a run processes: shard I of N takes scenes I, I+N, I+2N...
 * (0-based) of the sorted list. From --shard I/N, else from a Slurm job array.
 */
#ifndef GLRP_PIPELINE_SHARD_H
#define GLRP_PIPELINE_SHARD_H

#include "geolrp/geolrp.h"

typedef struct {
    int set;            /* 0: the whole list (no --shard, no Slurm array) */
    long index, count;
    char source[64];    /* "--shard" or the Slurm variables, for messages */
} shard_spec;

/* "I/N" with 0 <= I < N; errors (code 2) name opt. */
int shard_parse(const char *opt, const char *s, shard_spec *out, glrp_error *err);
/* From SLURM_ARRAY_TASK_ID with SLURM_ARRAY_TASK_COUNT, or SLURM_ARRAY_TASK_MIN/MAX (and
 * _STEP): I = (ID - MIN) / STEP, N = COUNT or (MAX - MIN) / STEP + 1. Leaves out->set 0
 * when SLURM_ARRAY_TASK_ID is unset; errors (code 2) name the variable at fault. */
int shard_from_env(shard_spec *out, glrp_error *err);

#endif
