// Quiet HDF5 calls for the cgo files of package loader (attrs.go,
// fields.go, h5c.go): each helper silences HDF5's automatic error printing
// for the duration of its own C call (the setting is per thread, and a cgo
// call stays on one thread), so that a missing file, link or attribute
// becomes a Go error rather than a stack dump on stderr.
#ifndef SALT_ORT_H5QUIET_H
#define SALT_ORT_H5QUIET_H

#include <hdf5.h>

typedef struct { H5E_auto2_t f; void *d; } h5_quiet;

static inline void h5_quiet_on(h5_quiet *q) {
	H5Eget_auto2(H5E_DEFAULT, &q->f, &q->d);
	H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

static inline void h5_quiet_off(h5_quiet *q) { H5Eset_auto2(H5E_DEFAULT, q->f, q->d); }

// h5_fopen_quiet opens a file read-only without printing HDF5's errors.
static inline hid_t h5_fopen_quiet(const char *path) {
	h5_quiet q; h5_quiet_on(&q);
	hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
	h5_quiet_off(&q);
	return f;
}

static inline void h5_fclose(hid_t f) { if (f >= 0) H5Fclose(f); }

#endif
