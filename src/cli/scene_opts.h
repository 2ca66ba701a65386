/*
 * The options every scene command shares (explain, classify, bands, batch): the model,
 * how a scene is read and tiled, what is explained, and the rule options. One table, one
 * parser and one help text, so the commands cannot drift apart.
 */
#ifndef GLRP_CLI_SCENE_OPTS_H
#define GLRP_CLI_SCENE_OPTS_H

#include <stdio.h>

#include "cli/rules_opts.h"
#include "pipeline/scene_job.h"

/* Long option ids after the rule options'; a command's own ids start at SCENE_OPT_END. */
enum { OPT_CONFIG = RULES_OPT_END, OPT_BANDS, OPT_TILE, OPT_STRIDE, OPT_BLEND, OPT_TARGET,
       OPT_INIT, OPT_MIN_VALID, OPT_THREADS, OPT_BATCH, OPT_CO, SCENE_OPT_END };

/* Entries to append to a command's option table (with -m in its short options). */
#define SCENE_LONG_OPTIONS                                                                  \
    {"model", required_argument, 0, 'm'}, {"config", required_argument, 0, OPT_CONFIG},    \
    {"bands", required_argument, 0, OPT_BANDS}, {"tile", required_argument, 0, OPT_TILE},  \
    {"stride", required_argument, 0, OPT_STRIDE},                                          \
    {"blend", required_argument, 0, OPT_BLEND},                                            \
    {"target", required_argument, 0, OPT_TARGET}, {"init", required_argument, 0, OPT_INIT}, \
    {"min-valid", required_argument, 0, OPT_MIN_VALID},                                    \
    {"threads", required_argument, 0, OPT_THREADS},                                        \
    {"batch", required_argument, 0, OPT_BATCH}, {"co", required_argument, 0, OPT_CO},       \
        RULES_LONG_OPTIONS

/* Handles one option of the table above for command cmd (named in errors): 1 when id is
 * not one of them, else 0 or an exit code. */
int scene_opts_handle(const char *cmd, int id, const char *arg, scene_job *j, rules_opts *ro);
/* After the option loop: the scene default composite unless --composite was given, then
 * the --rule overrides; the rules go into j; --co checked against GDAL's COG driver.
 * 0 or an exit code. */
int scene_opts_finish(scene_job *j, rules_opts *ro);

/* Help lines: -m, --config, --bands; the "Tiling:" section; the "Relevance:" section with
 * the rule options. */
void scene_opts_help_input(FILE *f);
void scene_opts_help_tiling(FILE *f);
/* The --co line (also used by geolrp merge). */
void scene_opts_help_co(FILE *f);
void scene_opts_help_relevance(FILE *f);

#endif
