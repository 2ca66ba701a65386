#include "mosaic/qml.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/tmpfile.h"
#include "mosaic/output.h"
#include "util/error.h"

char *qml_path_for(const char *raster_path)
{
    size_t len = strlen(raster_path);
    const char *dot = strrchr(raster_path, '.'), *slash = strrchr(raster_path, '/');
    if (dot && (!slash || dot > slash))
        len = (size_t)(dot - raster_path);
    char *q = malloc(len + 5);
    if (q)
        snprintf(q, len + 5, "%.*s.qml", (int)len, raster_path);
    return q;
}

static void xml_escape(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        default: fputc(*s, f);
        }
    }
}

static int write_atomically(const char *raster_path, void (*body)(FILE *, const void *),
                            const void *arg, outset *set, glrp_error *err)
{
    char *path = qml_path_for(raster_path), *tmp = NULL;
    FILE *f;
    if (!path)
        return glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory");
    int rc = tmpfile_create(path, &tmp, &f, err);
    if (!rc) {
        body(f, arg);
        rc = tmpfile_commit(f, tmp, path, set, err);
    }
    free(tmp);
    free(path);
    return rc;
}

static void relevance_body(FILE *f, const void *arg)
{
    double m = *(const double *)arg;
    if (!(m > 0))
        m = 1e-12;
    fprintf(f,
            "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"
            "<qgis version=\"3.22\" styleCategories=\"Symbology\">\n"
            "  <pipe>\n"
            "    <rasterrenderer type=\"singlebandpseudocolor\" band=\"1\" opacity=\"1\" "
            "alphaBand=\"-1\" classificationMin=\"%.9g\" classificationMax=\"%.9g\" "
            "nodataColor=\"\">\n"
            "      <rasterTransparency/>\n"
            "      <minMaxOrigin><limits>None</limits><extent>WholeRaster</extent>"
            "<statAccuracy>Estimated</statAccuracy></minMaxOrigin>\n"
            "      <rastershader>\n"
            "        <colorrampshader colorRampType=\"INTERPOLATED\" classificationMode=\"1\" "
            "clip=\"0\" minimumValue=\"%.9g\" maximumValue=\"%.9g\">\n"
            "          <item alpha=\"255\" value=\"%.9g\" label=\"%.3g\" color=\"#2166ac\"/>\n"
            "          <item alpha=\"255\" value=\"0\" label=\"0\" color=\"#f7f7f7\"/>\n"
            "          <item alpha=\"255\" value=\"%.9g\" label=\"%.3g\" color=\"#b2182b\"/>\n"
            "        </colorrampshader>\n"
            "      </rastershader>\n"
            "    </rasterrenderer>\n"
            "  </pipe>\n"
            "</qgis>\n",
            -m, m, -m, m, -m, -m, m, m);
}

int qml_write_relevance(const char *raster_path, double limit, outset *set, glrp_error *err)
{
    return write_atomically(raster_path, relevance_body, &limit, set, err);
}

typedef struct {
    int n;
    char **names;
} classes_arg;

static void classes_body(FILE *f, const void *arg)
{
    const classes_arg *c = arg;
    fprintf(f, "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"
               "<qgis version=\"3.22\" styleCategories=\"Symbology\">\n"
               "  <pipe>\n"
               "    <rasterrenderer type=\"paletted\" band=\"1\" opacity=\"1\" "
               "alphaBand=\"-1\" nodataColor=\"\">\n"
               "      <rasterTransparency/>\n"
               "      <colorPalette>\n");
    for (int k = 0; k < c->n; k++) {
        unsigned char rgb[3];
        glrp_class_color(k, rgb);
        fprintf(f, "        <paletteEntry value=\"%d\" alpha=\"255\" color=\"#%02x%02x%02x\" "
                   "label=\"", k, rgb[0], rgb[1], rgb[2]);
        xml_escape(f, c->names[k]);
        fprintf(f, "\"/>\n");
    }
    fprintf(f, "      </colorPalette>\n"
               "    </rasterrenderer>\n"
               "  </pipe>\n"
               "</qgis>\n");
}

int qml_write_classes(const char *raster_path, int n_classes, char **names, outset *set,
                      glrp_error *err)
{
    classes_arg c = {n_classes, names};
    return write_atomically(raster_path, classes_body, &c, set, err);
}
