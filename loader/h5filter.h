// Filters salt-ort registers in-process; see h5filter.c.
#ifndef SALT_ORT_H5FILTER_H
#define SALT_ORT_H5FILTER_H

#define SF_FILTER_LZF 32000
#define SF_FILTER_ZSTD 32015

// sf_register_filters registers the LZF and Zstandard filters with HDF5:
// 0 on success, -1 (LZF) or -2 (Zstandard) when HDF5 refused one.
int sf_register_filters(void);

#endif
