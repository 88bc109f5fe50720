// HDF5 filters that salt-ort registers in its own process, because Debian
// ships no loadable plugin that works for them:
//
//   - LZF (32000), h5py's own filter and the default of atlas-ftag-tools'
//     H5Writer (and so of Salt's PredictionWriter) until 2026. Debian's
//     hdf5-plugin-lzf plugin is not linked against liblzf and fails to load
//     (undefined symbol lzf_decompress), so the codec comes from Debian's
//     liblzf directly.
//   - Zstandard (32015), which atlas-ftag-tools writes through hdf5plugin.
//     Debian has no HDF5 plugin for it; the codec comes from libzstd.
//
// Both follow the stored layout that the writers use, so files written here
// read back in h5py/hdf5plugin and the other way round:
//
//   - LZF: a chunk is one raw LZF block. The filter's client data are
//     {format revision, LZF API version, chunk size in bytes}; the chunk
//     size, set when a dataset is created, sizes the output buffer when
//     reading. A chunk that LZF cannot shrink is stored uncompressed (the
//     filter is optional).
//   - Zstandard: a chunk is one or more Zstandard frames; the optional first
//     client datum is the compression level.

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <hdf5.h>
#include <liblzf/lzf.h>
#include <zstd.h>

#include "h5filter.h"

// Revision of the LZF client data layout; readers only use the chunk size.
#define SF_LZF_REVISION 4

// Largest output a corrupt or size-less chunk may grow to while decoding.
#define SF_MAX_CHUNK ((size_t)1 << 32)

static void sf_fail(const char *func, const char *msg) {
	H5Epush2(H5E_DEFAULT, "h5filter.c", func, __LINE__, H5E_ERR_CLS, H5E_PLINE, H5E_CANTFILTER, "%s", msg);
}

// sf_lzf_set_local records the chunk's size in bytes in the client data
// when a dataset is created with the LZF filter.
static herr_t sf_lzf_set_local(hid_t dcpl, hid_t type, hid_t space) {
	(void)space;
	unsigned flags = 0, cd[8] = {0};
	size_t ncd = 8;
	if (H5Pget_filter_by_id2(dcpl, SF_FILTER_LZF, &flags, &ncd, cd, 0, NULL, NULL) < 0) return -1;
	hsize_t dims[H5S_MAX_RANK];
	int rank = H5Pget_chunk(dcpl, H5S_MAX_RANK, dims);
	size_t elem = H5Tget_size(type);
	if (rank <= 0 || elem == 0) {
		sf_fail("sf_lzf_set_local", "lzf: the dataset must be chunked");
		return -1;
	}
	hsize_t bytes = elem;
	for (int i = 0; i < rank; i++) bytes *= dims[i];
	if (bytes > UINT_MAX) {
		sf_fail("sf_lzf_set_local", "lzf: chunk larger than 4 GiB");
		return -1;
	}
	unsigned out[3] = {SF_LZF_REVISION, LZF_VERSION, (unsigned)bytes};
	return H5Pmodify_filter(dcpl, SF_FILTER_LZF, flags, 3, out);
}

static size_t sf_lzf(unsigned flags, size_t ncd, const unsigned cd[], size_t nbytes, size_t *buf_size, void **buf) {
	if (nbytes > UINT_MAX) {
		sf_fail("sf_lzf", "lzf: chunk larger than 4 GiB");
		return 0;
	}
	if (flags & H5Z_FLAG_REVERSE) {
		// The recorded chunk size is exact; without one, grow until it fits.
		size_t cap = (ncd >= 3 && cd[2] != 0) ? cd[2] : *buf_size;
		if (cap == 0) cap = nbytes;
		for (;;) {
			void *out = malloc(cap);
			if (out == NULL) {
				sf_fail("sf_lzf", "lzf: out of memory");
				return 0;
			}
			errno = 0;
			unsigned got = lzf_decompress(*buf, (unsigned)nbytes, out, cap > UINT_MAX ? UINT_MAX : (unsigned)cap);
			if (got > 0) {
				free(*buf);
				*buf = out;
				*buf_size = cap;
				return got;
			}
			int e = errno;
			free(out);
			if (e != E2BIG || cap >= SF_MAX_CHUNK) {
				sf_fail("sf_lzf", e == E2BIG ? "lzf: chunk decodes to more than 4 GiB" : "lzf: corrupt chunk");
				return 0;
			}
			cap *= 2;
		}
	}
	// Compressing: worth it only if the result is smaller. On failure HDF5
	// stores the chunk as it is, since the filter is optional.
	if (nbytes < 2) return 0;
	void *out = malloc(nbytes);
	if (out == NULL) return 0;
	unsigned n = lzf_compress(*buf, (unsigned)nbytes, out, (unsigned)(nbytes - 1));
	if (n == 0) {
		free(out);
		return 0;
	}
	free(*buf);
	*buf = out;
	*buf_size = nbytes;
	return n;
}

static size_t sf_zstd(unsigned flags, size_t ncd, const unsigned cd[], size_t nbytes, size_t *buf_size, void **buf) {
	if (flags & H5Z_FLAG_REVERSE) {
		unsigned long long want = ZSTD_getFrameContentSize(*buf, nbytes);
		if (want == ZSTD_CONTENTSIZE_ERROR) {
			sf_fail("sf_zstd", "zstd: chunk is not a Zstandard frame");
			return 0;
		}
		size_t cap = want != ZSTD_CONTENTSIZE_UNKNOWN && want > 0 && want < SF_MAX_CHUNK ? (size_t)want : *buf_size;
		if (cap < nbytes) cap = 2 * nbytes;
		ZSTD_DCtx *dctx = ZSTD_createDCtx();
		char *out = malloc(cap);
		if (dctx == NULL || out == NULL) {
			ZSTD_freeDCtx(dctx);
			free(out);
			sf_fail("sf_zstd", "zstd: out of memory");
			return 0;
		}
		// Stream, so that frames without a recorded size and chunks of
		// several frames decode too.
		ZSTD_inBuffer in = {*buf, nbytes, 0};
		ZSTD_outBuffer ob = {out, cap, 0};
		for (;;) {
			size_t r = ZSTD_decompressStream(dctx, &ob, &in);
			if (ZSTD_isError(r)) {
				ZSTD_freeDCtx(dctx);
				free(out);
				sf_fail("sf_zstd", ZSTD_getErrorName(r));
				return 0;
			}
			if (in.pos == in.size && (r == 0 || ob.pos < ob.size)) {
				if (r != 0) {
					ZSTD_freeDCtx(dctx);
					free(out);
					sf_fail("sf_zstd", "zstd: truncated chunk");
					return 0;
				}
				break;
			}
			if (ob.pos == ob.size) {
				if (cap >= SF_MAX_CHUNK) {
					ZSTD_freeDCtx(dctx);
					free(out);
					sf_fail("sf_zstd", "zstd: chunk decodes to more than 4 GiB");
					return 0;
				}
				char *grown = realloc(out, 2 * cap);
				if (grown == NULL) {
					ZSTD_freeDCtx(dctx);
					free(out);
					sf_fail("sf_zstd", "zstd: out of memory");
					return 0;
				}
				out = grown;
				cap *= 2;
				ob.dst = out;
				ob.size = cap;
			}
		}
		ZSTD_freeDCtx(dctx);
		free(*buf);
		*buf = out;
		*buf_size = cap;
		return ob.pos;
	}
	int level = ncd > 0 ? (int)cd[0] : ZSTD_CLEVEL_DEFAULT;
	size_t cap = ZSTD_compressBound(nbytes);
	void *out = malloc(cap);
	if (out == NULL) {
		sf_fail("sf_zstd", "zstd: out of memory");
		return 0;
	}
	size_t n = ZSTD_compress(out, cap, *buf, nbytes, level);
	if (ZSTD_isError(n)) {
		free(out);
		sf_fail("sf_zstd", ZSTD_getErrorName(n));
		return 0;
	}
	free(*buf);
	*buf = out;
	*buf_size = cap;
	return n;
}

static const H5Z_class2_t sf_lzf_class = {
	H5Z_CLASS_T_VERS, (H5Z_filter_t)SF_FILTER_LZF, 1, 1, "lzf (salt-ort, liblzf)", NULL, sf_lzf_set_local, sf_lzf,
};

static const H5Z_class2_t sf_zstd_class = {
	H5Z_CLASS_T_VERS, (H5Z_filter_t)SF_FILTER_ZSTD, 1, 1, "zstd (salt-ort, libzstd)", NULL, NULL, sf_zstd,
};

int sf_register_filters(void) {
	if (H5Zregister(&sf_lzf_class) < 0) return -1;
	if (H5Zregister(&sf_zstd_class) < 0) return -2;
	return 0;
}
