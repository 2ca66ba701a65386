#include "util/progress.h"

#include <stdio.h>

/* Prints "0...10...20...30" as GDAL's command-line tools do, one step per 2.5%. */
void progress_update(progress *p, double fraction)
{
    if (p->quiet)
        return;
    if (!p->started) {
        p->started = 1;
        fprintf(stderr, "0");
    }
    int step = (int)(fraction * 40.0 + 1e-9);
    if (step > 40)
        step = 40;
    while (p->shown < step) {
        p->shown++;
        if (p->shown % 4 == 0)
            fprintf(stderr, "%d", p->shown / 4 * 10);
        else
            fprintf(stderr, ".");
        if (p->shown == 40)
            fprintf(stderr, " - done.\n");
    }
    fflush(stderr);
}
