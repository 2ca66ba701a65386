/*
 * The options of a scene job in one canonical form, for the batch manifest: a rerun skips
 * a scene only when these are the same as when it was done.
 */
#ifndef GLRP_PIPELINE_JOB_OPTIONS_H
#define GLRP_PIPELINE_JOB_OPTIONS_H

#include <jansson.h>

#include "pipeline/scene_job.h"

/* Every option that can change an output, parsed (so "1e-6" and "0.000001" agree), null
 * where it was not given (the config or the model decide then, and config_sha256 covers
 * the config's content). --threads is left out: outputs do not depend on it; --batch is
 * in: the last bits of the relevance do. NULL without memory. */
json_t *job_options_json(const scene_job *j, const char *config_path,
                         const char *config_sha256, int scores);
/* The text two option objects are compared by (sorted keys, reals to 9 digits, as the
 * manifest stores them). Free with free(). */
char *job_options_text(const json_t *options);

#endif
