/*
 * Output names of the scenes of a batch: each scene's outputs are OUTDIR/NAME.<kind>, NAME
 * being the file name without its extension. Scenes of the same name from different
 * folders are told apart by their path below the deepest folder they share, '/' becoming
 * "__" (a/x/s.tif, b/x/s.tif: a__x__s, b__x__s); if that still collides (s.tif and s.vrt
 * side by side) the extension is kept (s_tif, s_vrt); as a last resort "~K" is appended,
 * K the scene's 1-based position in the sorted list. Names depend on the whole list, never
 * on the shard, so every shard names a scene alike.
 */
#ifndef GLRP_PIPELINE_SCENE_NAMES_H
#define GLRP_PIPELINE_SCENE_NAMES_H

#include "pipeline/inputs.h"

int scene_names_assign(input_list *l, glrp_error *err);

#endif
