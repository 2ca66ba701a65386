#include "analysis/band_stats.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "analysis/metrics.h"
#include "io/tmpfile.h"
#include "util/error.h"

int band_stats_init(band_stats *b, int C, int K, char **band_names, char **class_names,
                    int occlusion)
{
    memset(b, 0, sizeof *b);
    b->C = C, b->K = K, b->band_names = band_names, b->class_names = class_names;
    b->occlusion = occlusion;
    b->all = glrp_alloc((size_t)C, sizeof *b->all);
    b->per_class = glrp_alloc((size_t)C * K, sizeof *b->per_class);
    b->class_pixels = glrp_alloc((size_t)K, sizeof *b->class_pixels);
    b->occl_sum = glrp_alloc((size_t)C, sizeof *b->occl_sum);
    return b->all && b->per_class && b->class_pixels && b->occl_sum ? 0 : GLRP_ERR_RUNTIME;
}

void band_stats_free(band_stats *b)
{
    free(b->all), free(b->per_class), free(b->class_pixels), free(b->occl_sum);
    memset(b, 0, sizeof *b);
}

static void acc_add(band_acc *a, double v)
{
    a->sum += v;
    a->abs += fabs(v);
    if (v > 0)
        a->pos += v;
    else
        a->neg += v;
}

void band_stats_add_pixel(band_stats *b, int cls, const float *r, size_t stride)
{
    b->pixels++;
    if (cls >= 0 && cls < b->K)
        b->class_pixels[cls]++;
    for (int c = 0; c < b->C; c++) {
        double v = r[(size_t)c * stride];
        acc_add(&b->all[c], v);
        if (cls >= 0 && cls < b->K)
            acc_add(&b->per_class[(size_t)cls * b->C + c], v);
    }
}

static double total_abs(const band_acc *a, int C)
{
    double t = 0;
    for (int c = 0; c < C; c++)
        t += a[c].abs;
    return t;
}

static json_t *bands_array(const band_stats *b, const band_acc *a, long long pixels,
                           const double *occl)
{
    double total = total_abs(a, b->C), abs_v[b->C], rank[b->C];
    for (int c = 0; c < b->C; c++)
        abs_v[c] = a[c].abs;
    json_t *arr = ranks_desc_d(abs_v, (size_t)b->C, rank) ? NULL : json_array();
    if (!arr)
        return NULL;
    for (int c = 0; c < b->C; c++) {
        json_t *e = json_pack("{s:i, s:s, s:f, s:f, s:f, s:f, s:f, s:f, s:f}", "index", c + 1,
                              "name", b->band_names[c], "relevance_sum", a[c].sum,
                              "relevance_abs_sum", a[c].abs, "positive_sum", a[c].pos,
                              "negative_sum", a[c].neg, "share",
                              total > 0 ? 100.0 * a[c].abs / total : 0.0, "mean",
                              pixels ? a[c].sum / (double)pixels : 0.0, "rank", rank[c]);
        json_object_set_new(e, "occlusion_drop", occl ? json_real(occl[c]) : json_null());
        json_array_append_new(arr, e);
    }
    return arr;
}

json_t *band_stats_json(const band_stats *b, double *rho)
{
    double occl[b->C], abs_v[b->C];
    *rho = NAN;
    if (b->occlusion && b->occl_tiles > 0) {
        for (int c = 0; c < b->C; c++) {
            occl[c] = b->occl_sum[c] / (double)b->occl_tiles;
            abs_v[c] = b->all[c].abs;
        }
        *rho = spearman_d(abs_v, occl, (size_t)b->C);
    }
    const double *o = b->occlusion && b->occl_tiles > 0 ? occl : NULL;
    json_t *root = json_object();
    json_object_set_new(root, "valid_pixels", json_integer(b->pixels));
    json_object_set_new(root, "bands", bands_array(b, b->all, b->pixels, o));
    json_t *pc = json_object();
    int ok = json_object_get(root, "bands") != NULL && pc != NULL;
    for (int k = 0; ok && k < b->K; k++) {
        json_t *e = json_object(), *arr = bands_array(b, b->per_class + (size_t)k * b->C,
                                                      b->class_pixels[k], NULL);
        ok = e && arr;
        json_object_set_new(e, "pixels", json_integer(b->class_pixels[k]));
        json_object_set_new(e, "bands", arr);
        json_object_set_new(pc, b->class_names[k], e);
    }
    if (!ok) { /* out of memory: no document rather than one with holes */
        json_decref(pc);
        json_decref(root);
        return NULL;
    }
    json_object_set_new(root, "per_class", pc);
    json_object_set_new(root, "spearman_lrp_vs_occlusion", isfinite(*rho) ? json_real(*rho)
                                                                         : json_null());
    if (o)
        json_object_set_new(root, "occlusion_tiles", json_integer(b->occl_tiles));
    return root;
}

static void csv_field(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

int band_stats_write_csv(const band_stats *b, const char *path, outset *set, glrp_error *err)
{
    double rho;
    json_t *doc = band_stats_json(b, &rho);
    if (!doc)
        return glrp_fail(err, GLRP_ERR_RUNTIME, "%s: out of memory", path);
    char *tmp;
    FILE *f;
    int rc = tmpfile_create(path, &tmp, &f, err);
    if (rc) {
        json_decref(doc);
        return rc;
    }
    fprintf(f, "class,index,name,relevance_sum,relevance_abs_sum,positive_sum,negative_sum,"
               "share,mean,rank,occlusion_drop\n");
    for (int k = -1; k < b->K; k++) {
        json_t *arr = k < 0 ? json_object_get(doc, "bands")
                            : json_object_get(json_object_get(json_object_get(doc, "per_class"),
                                                              b->class_names[k]), "bands");
        size_t i;
        json_t *e;
        json_array_foreach(arr, i, e) {
            csv_field(f, k < 0 ? "all" : b->class_names[k]);
            fprintf(f, ",%d,", (int)json_integer_value(json_object_get(e, "index")));
            csv_field(f, json_string_value(json_object_get(e, "name")));
            const char *keys[] = {"relevance_sum", "relevance_abs_sum", "positive_sum",
                                  "negative_sum", "share", "mean", "rank"};
            for (int q = 0; q < 7; q++)
                fprintf(f, ",%.9g", json_real_value(json_object_get(e, keys[q])));
            json_t *o = json_object_get(e, "occlusion_drop");
            if (json_is_real(o))
                fprintf(f, ",%.9g\n", json_real_value(o));
            else
                fprintf(f, ",\n");
        }
    }
    json_decref(doc);
    rc = tmpfile_commit(f, tmp, path, set, err);
    free(tmp);
    return rc;
}

static void xml_text(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '<') fputs("&lt;", f);
        else if (*s == '>') fputs("&gt;", f);
        else if (*s == '&') fputs("&amp;", f);
        else fputc(*s, f);
    }
}

/* One panel per group (all pixels, then each class): a horizontal bar per band, its
 * positive share in red and its negative share in blue, stacked, in percent of the
 * group's total |R|. */
int band_stats_write_svg(const band_stats *b, const char *path, const char *title,
                         outset *set, glrp_error *err)
{
    const int bar = 16, gap = 6, label_w = 150, plot_w = 420, top = 50, panel_head = 28;
    const int panel_h = panel_head + b->C * (bar + gap) + 30;
    const int groups = 1 + b->K, width = label_w + plot_w + 120;
    const int height = top + groups * panel_h + 40;
    char *tmp;
    FILE *f;
    int rc = tmpfile_create(path, &tmp, &f, err);
    if (rc)
        return rc;
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
               "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"12\">\n",
            width, height, width, height);
    fprintf(f, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
    fprintf(f, "<text x=\"10\" y=\"24\" font-size=\"16\" font-weight=\"bold\">");
    xml_text(f, title);
    fprintf(f, "</text>\n<text x=\"10\" y=\"42\" fill=\"#444\">share of total |relevance| per "
               "band (%%): <tspan fill=\"#b2182b\">positive</tspan> + <tspan "
               "fill=\"#2166ac\">negative</tspan></text>\n");
    for (int g = 0; g < groups; g++) {
        const band_acc *a = g == 0 ? b->all : b->per_class + (size_t)(g - 1) * b->C;
        long long px = g == 0 ? b->pixels : b->class_pixels[g - 1];
        double total = total_abs(a, b->C), maxshare = 0;
        for (int c = 0; c < b->C; c++)
            if (total > 0 && 100 * a[c].abs / total > maxshare)
                maxshare = 100 * a[c].abs / total;
        double scale = maxshare > 0 ? plot_w / maxshare : 0;
        int y0 = top + g * panel_h;
        fprintf(f, "<g class=\"panel\">\n<text x=\"10\" y=\"%d\" font-weight=\"bold\">", y0 + 18);
        xml_text(f, g == 0 ? "all valid pixels" : b->class_names[g - 1]);
        fprintf(f, " (%lld pixels)</text>\n", px);
        for (int c = 0; c < b->C; c++) {
            int y = y0 + panel_head + c * (bar + gap);
            double pos = total > 0 ? 100 * a[c].pos / total : 0;
            double neg = total > 0 ? -100 * a[c].neg / total : 0;
            fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">", label_w - 8, y + bar - 4);
            xml_text(f, b->band_names[c]);
            fprintf(f, "</text>\n");
            fprintf(f, "<rect class=\"pos\" data-band=\"%d\" x=\"%d\" y=\"%d\" width=\"%.2f\" "
                       "height=\"%d\" fill=\"#b2182b\"><title>positive %.2f%%</title></rect>\n",
                    c + 1, label_w, y, pos * scale, bar, pos);
            fprintf(f, "<rect class=\"neg\" data-band=\"%d\" x=\"%.2f\" y=\"%d\" width=\"%.2f\" "
                       "height=\"%d\" fill=\"#2166ac\"><title>negative %.2f%%</title></rect>\n",
                    c + 1, label_w + pos * scale, y, neg * scale, bar, neg);
            fprintf(f, "<text x=\"%.2f\" y=\"%d\" fill=\"#222\">%.1f%%</text>\n",
                    label_w + (pos + neg) * scale + 6, y + bar - 4, pos + neg);
        }
        int ya = y0 + panel_head + b->C * (bar + gap);
        fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#888\"/>\n", label_w,
                ya, label_w + plot_w, ya);
        for (int t = 0; t <= 4; t++)
            fprintf(f, "<text x=\"%.1f\" y=\"%d\" fill=\"#666\" text-anchor=\"middle\">%.1f"
                       "</text>\n", label_w + plot_w * t / 4.0, ya + 14, maxshare * t / 4.0);
        fprintf(f, "</g>\n");
    }
    fprintf(f, "</svg>\n");
    rc = tmpfile_commit(f, tmp, path, set, err);
    free(tmp);
    return rc;
}
