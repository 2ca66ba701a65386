#!/usr/bin/python3
"""Compares the outputs of two geolrp runs: compare_outputs.py DIR_A DIR_B NAME...

For each NAME present in DIR_A: a raster must have bit-identical values (float32 compared
as bits, NaN included), the same metadata, band descriptions, geotransform and CRS; a
.json report must be equal apart from time_seconds and output paths; anything else
byte-identical. Prints every difference; exit 1 if there is one.
Debian's interpreter (/usr/bin/python3) with numpy and the GDAL bindings.
"""

import json
import os
import sys

import numpy as np
from osgeo import gdal

gdal.UseExceptions()


def raster(path):
    ds = gdal.Open(path)
    data = ds.ReadAsArray()
    meta = ds.GetMetadata() or {}
    bands = [(ds.GetRasterBand(k + 1).GetDescription(),
              ds.GetRasterBand(k + 1).GetMetadata() or {}) for k in range(ds.RasterCount)]
    srs = ds.GetSpatialRef()
    return data, meta, bands, ds.GetGeoTransform(can_return_null=True), srs


def compare(a, b):
    if a.endswith('.tif'):
        da, ma, ba, ga, sa = raster(a)
        db, mb, bb, gb, sb = raster(b)
        if da.dtype != db.dtype or da.shape != db.shape:
            return 'type or shape %s %s vs %s %s' % (da.dtype, da.shape, db.dtype, db.shape)
        same = (np.array_equal(da.view(np.uint32), db.view(np.uint32))
                if da.dtype == np.float32 else np.array_equal(da, db))
        if not same:
            diff = np.abs(da.astype(np.float64) - db.astype(np.float64))
            return 'values differ at %d pixels (max |diff| %g)' % (
                int(np.count_nonzero(~(diff == 0) & ~np.isnan(diff))), np.nanmax(diff))
        if ma != mb:
            return 'metadata differ: %s vs %s' % (ma, mb)
        if ba != bb:
            return 'band descriptions or statistics differ'
        if ga != gb or (sa is None) != (sb is None) or (sa is not None and not sa.IsSame(sb)):
            return 'georeferencing differs'
        return None
    if a.endswith('.json'):
        with open(a) as fa, open(b) as fb:
            ja, jb = json.load(fa), json.load(fb)
        for j in (ja, jb):
            j.pop('time_seconds', None)
            j.pop('outputs', None)
        return None if ja == jb else 'JSON differs (apart from time_seconds and outputs)'
    with open(a, 'rb') as fa, open(b, 'rb') as fb:
        return None if fa.read() == fb.read() else 'bytes differ'


def main():
    if len(sys.argv) < 4:
        sys.exit('usage: compare_outputs.py DIR_A DIR_B NAME...')
    da, db, names = sys.argv[1], sys.argv[2], sys.argv[3:]
    bad = 0
    for name in names:
        a, b = os.path.join(da, name), os.path.join(db, name)
        if not os.path.exists(a) or not os.path.exists(b):
            print('%s: missing in %s' % (name, da if not os.path.exists(a) else db))
            bad += 1
            continue
        why = compare(a, b)
        print('%s: %s' % (name, why or 'same'))
        bad += why is not None
    sys.exit(1 if bad else 0)


if __name__ == '__main__':
    main()
