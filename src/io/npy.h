/*
 * NumPy .npy files of float32, read and written in batches so that arrays larger than
 * memory stream through. Formats 1.0 and 2.0; little-endian float32 in C order only:
 * anything else is refused with a message that says what the file holds.
 */
#ifndef GLRP_IO_NPY_H
#define GLRP_IO_NPY_H

#include <stdint.h>
#include <stdio.h>

#include "geolrp/geolrp.h"
#include "io/tmpfile.h"

#define NPY_MAX_RANK 8

typedef struct {
    FILE *f;
    char *path;
    int rank;
    int64_t shape[NPY_MAX_RANK];
    size_t count;      /* elements */
    size_t read_count; /* elements read so far */
} npy_reader;

int npy_open(const char *path, npy_reader *r, glrp_error *err);
/* Reads the next count elements. */
int npy_read(npy_reader *r, float *dst, size_t count, glrp_error *err);
/* Back to the first element. */
int npy_rewind(npy_reader *r, glrp_error *err);
void npy_close(npy_reader *r);

typedef struct {
    FILE *f;
    char *path, *tmp;
    size_t count, written;
} npy_writer;

/* Writes to a temporary file in the same folder; npy_commit renames it into place, or hands
 * it to set (io/tmpfile.h) to be renamed with the command's other outputs. */
int npy_create(const char *path, int rank, const int64_t *shape, npy_writer *w,
               glrp_error *err);
int npy_write(npy_writer *w, const float *src, size_t count, glrp_error *err);
int npy_commit(npy_writer *w, outset *set, glrp_error *err);
/* Removes the temporary file (safe on a writer never created or already committed). */
void npy_abort(npy_writer *w);

/* A version 1.0 header (magic, length, dictionary, padding to 64 bytes) for a float32 C
 * array of this shape, written to buf; returns its length, 0 if buf is too small. Other
 * containers (pipeline/part_file.c) embed .npy arrays with it. */
size_t npy_format_header(int rank, const int64_t *shape, unsigned char *buf, size_t size);

/* Parses a header dictionary; exposed for tests. */
int npy_parse_header(const char *text, size_t len, int *rank, int64_t *shape, char *descr,
                     size_t descr_size, int *fortran, glrp_error *err);

#endif
