/*
 * The scenes of a batch: command-line arguments (files, glob patterns, folders searched
 * recursively by extension, lists of paths) expanded into one list, sorted by path, without
 * duplicates (two paths of the same file count once), so every run and every shard sees the
 * same scenes in the same order. docs/batch.md states the rules.
 */
#ifndef GLRP_PIPELINE_INPUTS_H
#define GLRP_PIPELINE_INPUTS_H

#include <stddef.h>
#include <sys/types.h>

#include "geolrp/geolrp.h"

typedef struct {
    char *path;  /* absolute: the folder resolved (realpath), the file name as found */
    char *name;  /* output name, set by scene_names_assign */
    dev_t dev;
    ino_t ino;
} batch_input;

typedef struct {
    batch_input *v;
    size_t n, cap;
} input_list;

typedef struct {
    const char **exts;       /* lowercase, without the dot: what folders and patterns yield */
    int n_exts;
    const char *exclude_dir; /* never searched (the output folder), or NULL */
} input_rules;

/* Expands args into l (sorted, de-duplicated). Errors (exit code 2) name the argument or
 * the list file and line at fault. */
int inputs_expand(char *const *args, int n, const input_rules *r, input_list *l,
                  glrp_error *err);
void inputs_free(input_list *l);
/* Whether name ends in one of the extensions (case-insensitive). */
int inputs_ext_matches(const char *name, const input_rules *r);

#endif
