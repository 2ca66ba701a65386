/*
 * QGIS style sidecars: a <basename>.qml beside a raster is applied when the layer is
 * added. Relevance gets a diverging ramp centred on 0 with fixed symmetric limits (QGIS
 * would otherwise stretch 2-98% and put zero anywhere); class maps get their palette.
 */
#ifndef GLRP_MOSAIC_QML_H
#define GLRP_MOSAIC_QML_H

#include "geolrp/geolrp.h"
#include "io/tmpfile.h"

/* The .qml path for a raster path ("out.tif" -> "out.qml"); malloc'ed. */
char *qml_path_for(const char *raster_path);
/* Both stage the .qml in set (io/tmpfile.h), or rename it into place when set is NULL. */
int qml_write_relevance(const char *raster_path, double limit, outset *set, glrp_error *err);
int qml_write_classes(const char *raster_path, int n_classes, char **names, outset *set,
                      glrp_error *err);

#endif
