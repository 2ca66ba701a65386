/* geolrp: explain neural-network classifiers of geospatial rasters with LRP. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "util/cleanup.h"

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: geolrp COMMAND [OPTIONS]\n"
            "\n"
            "Layer-wise Relevance Propagation for classifiers of geospatial rasters.\n"
            "\n"
            "Commands:\n"
            "  explain     relevance layers for a whole scene, as a georeferenced COG\n"
            "              (--part I/N: one part of a scene split across jobs)\n"
            "  merge       the part files of 'explain --part' into a single run's outputs\n"
            "  classify    class map of a whole scene, as a georeferenced COG\n"
            "  bands       band importance of a scene (JSON, CSV, SVG), with occlusion check\n"
            "  batch       explain many scenes (files, folders, patterns, lists) into a folder,\n"
            "              resumable, with a manifest; --shard I/N for clusters\n"
            "  merge-manifest  combine the manifests of a batch's shards and count the scenes\n"
            "  relevance   explain samples of a .npy array with an ONNX model\n"
            "  synth       synthetic samples with ground-truth masks (artifact studies)\n"
            "  eval        fact-or-artifact metrics against ground truth; --benchmark\n"
            "  info        show how geolrp reads an ONNX model and which rule each layer gets\n"
            "\n"
            "Run 'geolrp COMMAND --help' for the options of a command.\n"
            "Exit codes: 0 success, 1 runtime failure, 2 bad input or usage.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    cleanup_install_handlers();
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        usage(stdout);
        return EXIT_OK;
    }
    if (!strcmp(cmd, "--version")) {
        printf("geolrp %s\n", GEOLRP_VERSION);
        return EXIT_OK;
    }
    if (!strcmp(cmd, "relevance"))
        return cmd_relevance(argc - 1, argv + 1);
    if (!strcmp(cmd, "explain"))
        return cmd_explain(argc - 1, argv + 1);
    if (!strcmp(cmd, "eval"))
        return cmd_eval(argc - 1, argv + 1);
    if (!strcmp(cmd, "synth"))
        return cmd_synth(argc - 1, argv + 1);
    if (!strcmp(cmd, "bands"))
        return cmd_bands(argc - 1, argv + 1);
    if (!strcmp(cmd, "classify"))
        return cmd_classify(argc - 1, argv + 1);
    if (!strcmp(cmd, "batch"))
        return cmd_batch(argc - 1, argv + 1);
    if (!strcmp(cmd, "merge-manifest"))
        return cmd_merge_manifest(argc - 1, argv + 1);
    if (!strcmp(cmd, "info"))
        return cmd_info(argc - 1, argv + 1);
    if (!strcmp(cmd, "merge"))
        return cmd_merge(argc - 1, argv + 1);
    fprintf(stderr, "geolrp: unknown command '%s'\n", cmd);
    usage(stderr);
    return EXIT_USAGE;
}
