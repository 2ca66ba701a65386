/* geolrp synth: synthetic samples with ground-truth masks (see src/synth/synth.h). */
#include <errno.h>
#include <gdal.h>
#include <sys/stat.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "synth/synth.h"

static void help(FILE *f)
{
    fprintf(f,
            "Usage: geolrp synth -o DIR [--variant NAME|all] [--count N] [--seed S]\n"
            "                    [--size N] [--square N] [--geotiff K] [-q]\n"
            "\n"
            "Writes DIR/X.npy (N, C, size, size), DIR/masks.npy (N, size, size: 1 on the\n"
            "class-defining square), DIR/labels.npy (N), DIR/meta.json and the first K samples\n"
            "as GeoTIFFs. With --variant all, one folder per variant under DIR.\n"
            "\n"
            "Options:\n"
            "  -o, --output DIR    output folder (created)\n"
            "  --variant NAME      all (default) or one of:\n");
    for (int k = 0; synth_variants[k].name; k++)
        fprintf(f, "                        %-10s %s\n", synth_variants[k].name,
                synth_variants[k].what);
    fprintf(f,
            "  --count N           samples per variant (default 2000)\n"
            "  --seed S            seed (default 1); a sample depends only on seed and index\n"
            "  --size N            image side (default 32)\n"
            "  --square N          side of the squares (default 6)\n"
            "  --geotiff K         first K samples also as GeoTIFF (default 4)\n"
            "  -q, --quiet         no summary\n"
            "  -h, --help          this help\n");
}

int cmd_synth(int argc, char **argv)
{
    static const struct option opts[] = {
        {"output", required_argument, 0, 'o'}, {"variant", required_argument, 0, 'v'},
        {"count", required_argument, 0, 'n'}, {"seed", required_argument, 0, 's'},
        {"size", required_argument, 0, 'z'}, {"square", required_argument, 0, 'Q'},
        {"geotiff", required_argument, 0, 'g'}, {"quiet", no_argument, 0, 'q'},
        {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    const char *out = NULL, *variant = "all";
    long count = 2000, seed = 1, size = 32, square = 6, tiff = 4;
    int quiet = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:qh", opts, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        case 'v': variant = optarg; break;
        case 'n': if (arg_int("--count", optarg, 1, 10000000, &count)) return EXIT_USAGE; break;
        case 's': if (arg_int("--seed", optarg, 0, 1L << 40, &seed)) return EXIT_USAGE; break;
        case 'z': if (arg_int("--size", optarg, 8, 4096, &size)) return EXIT_USAGE; break;
        case 'Q': if (arg_int("--square", optarg, 1, 1024, &square)) return EXIT_USAGE; break;
        case 'g': if (arg_int("--geotiff", optarg, 0, 1000, &tiff)) return EXIT_USAGE; break;
        case 'q': quiet = 1; break;
        case 'h': help(stdout); return EXIT_OK;
        default: return usage_error("synth", "unknown option or missing value");
        }
    }
    if (!out || optind != argc)
        return usage_error("synth", "-o DIR is required, and no other arguments");
    /* Three squares with gaps must fit: 3 (square + 1) <= size in each direction. */
    if (3 * (square + 1) > size)
        return usage_error("synth", "--square %ld is too large for --size %ld", square, size);
    const synth_variant *one = strcmp(variant, "all") ? synth_find(variant) : NULL;
    if (strcmp(variant, "all") && !one)
        return usage_error("synth", "--variant: unknown variant '%s'", variant);
    GDALAllRegister();
    synth_params p = {(int)size, (int)square, (uint64_t)seed};
    glrp_error err = {0};
    if (!one && mkdir(out, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "geolrp: error: %s: cannot create folder: %s\n", out, strerror(errno));
        return EXIT_RUNTIME;
    }
    for (int k = 0; synth_variants[k].name; k++) {
        const synth_variant *v = &synth_variants[k];
        if (one && v != one)
            continue;
        char dir[1024];
        if (one)
            snprintf(dir, sizeof dir, "%s", out);
        else
            snprintf(dir, sizeof dir, "%s/%s", out, v->name);
        if (synth_write(v, &p, (int)count, (int)tiff, dir, &err)) {
            print_error(&err);
            return err.code;
        }
        if (!quiet)
            fprintf(stderr, "%s: %ld samples of %d x %ld x %ld in %s\n", v->name, count,
                    v->bands, size, size, dir);
    }
    return EXIT_OK;
}
