/*
 * The part file of `geolrp explain --part I/N`: one file, written under a temporary name
 * beside its destination and renamed when complete (docs/merge.md describes the layout):
 *
 *   16 bytes   "GEOLRP-PART" magic, format version
 *   .npy       seam: float32 (count,), the tiles that overlap earlier parts, as they are
 *   .npy       rows: float32 (rows, bands + 2, width), per row the weighted sums of every
 *              accumulated band, the weight sum and the validity (0 or 1)
 *   JSON       what the part is: scene, model, options, statistics, the data's SHA-256
 *   32 bytes   trailer: "GLRPJSON", JSON offset and length (uint64 little-endian), "GLRPEND\n"
 *
 * The arrays are ordinary .npy streams (numpy.lib.format.read_array at their offset reads
 * them); the JSON gives their offsets. This file knows the container only; what the JSON
 * holds is part_meta.c's business.
 */
#ifndef GLRP_PIPELINE_PART_FILE_H
#define GLRP_PIPELINE_PART_FILE_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

#include "geolrp/geolrp.h"
#include "util/sha256.h"

#define PART_FORMAT "geolrp-part"
#define PART_FORMAT_VERSION 1

typedef struct part_writer {
    FILE *f;
    char *path, *tmp;
    sha256_stream *sha;
    uint64_t at;              /* bytes written */
    int width, bands;         /* accumulated bands; a row holds (bands + 2) * width floats */
    long long rows, rows_written;
    float *seam;              /* tiles buffered until the first row or the commit */
    size_t seam_n, seam_cap;
    json_t *seam_tiles;       /* [[x0, y0, w, h], ...] */
    int seam_written;
    uint64_t seam_offset, rows_offset;
    float *row;               /* one row being assembled */
} part_writer;

int part_writer_create(part_writer *w, const char *path, int bands, int width, long long rows,
                       glrp_error *err);
/* The first h rows of a tile's values (bands, th, tw) at (x0, y0), cols columns of which
 * lie inside the raster. */
int part_writer_seam(part_writer *w, const float *values, int th, int tw, int h, int x0,
                     int y0, int cols, glrp_error *err);
/* The next row: sums (bands, width), weights (width), validity (width). */
int part_writer_row(part_writer *w, const float *sums, const float *weight,
                    const uint8_t *valid, glrp_error *err);
/* Adds "data" (offsets, shapes, seam tiles, SHA-256) to doc, writes it and the trailer,
 * and renames the file into place. The writer is closed either way. */
int part_writer_commit(part_writer *w, json_t *doc, glrp_error *err);
void part_writer_abort(part_writer *w);

typedef struct {
    char *path;
    json_t *doc;              /* the part's JSON document */
    uint64_t json_offset;
    uint64_t seam_offset, seam_count, rows_offset;
    long long rows;
    int row_floats;
    /* streaming */
    FILE *f;
    sha256_stream *sha;
    uint64_t at;
} part_reader;

/* Opens a part file, checks its container (magic, trailer, JSON, both .npy headers and
 * where they end) and reads its document. Errors name the file; bad files are
 * GLRP_ERR_INPUT. */
int part_reader_open(part_reader *r, const char *path, glrp_error *err);
/* Streams the data in file order, hashing it: first the seam values, then the rows. */
int part_reader_begin(part_reader *r, glrp_error *err);
int part_reader_seam(part_reader *r, float *dst, size_t count, glrp_error *err);
int part_reader_rows_begin(part_reader *r, glrp_error *err);
int part_reader_row(part_reader *r, float *dst, glrp_error *err);
/* Every byte read, and the SHA-256 equals the one recorded. */
int part_reader_verify(part_reader *r, glrp_error *err);
void part_reader_close(part_reader *r);

#endif
