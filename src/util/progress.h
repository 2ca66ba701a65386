/* Progress on stderr as GDAL's command-line tools show it: "0...10...20...". */
#ifndef GLRP_UTIL_PROGRESS_H
#define GLRP_UTIL_PROGRESS_H

typedef struct {
    int quiet;
    int started;
    int shown; /* steps of 2.5% printed */
} progress;

void progress_update(progress *p, double fraction);

#endif
