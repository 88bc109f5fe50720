package loader

// This file makes the HDF5 compression filters of Salt's toolchain
// available without any setting by the user: LZF and Zstandard registered
// in-process (h5filter.c), the others loaded as plugins from the directory
// where Debian's filter plugin packages install them, which is added to
// HDF5's plugin search path even when HDF5_PLUGIN_PATH names others. A
// filter that is still missing is reported with the Debian package that
// provides it.

/*
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <hdf5.h>
#include "h5filter.h"

static int fl_register(void) {
	H5E_auto2_t f; void *d;
	H5Eget_auto2(H5E_DEFAULT, &f, &d);
	H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
	int rc = sf_register_filters();
	H5Eset_auto2(H5E_DEFAULT, f, d);
	return rc;
}

static int fl_num_paths(void) {
	unsigned n = 0;
	if (H5PLsize(&n) < 0) return -1;
	return (int)n;
}

static long fl_path(unsigned i, char *buf, size_t cap) { return (long)H5PLget(i, buf, cap); }
static int fl_append_path(const char *dir) { return H5PLappend(dir) < 0 ? -1 : 0; }
static int fl_avail(int id) { return H5Zfilter_avail((H5Z_filter_t)id) > 0; }

// fl_dlopen_error loads a plugin, binding every symbol now, and returns why it
// fails, or "" when it loads.
static void fl_dlopen_error(const char *path, char *buf, size_t cap) {
	buf[0] = 0;
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (h != NULL) {
		dlclose(h);
		return;
	}
	const char *e = dlerror();
	if (e != NULL) {
		strncpy(buf, e, cap - 1);
		buf[cap - 1] = 0;
	}
}
*/
import "C"

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"unsafe"
)

// HDF5 filter ids of the filters Salt's toolchain writes.
const (
	filterDeflate    = 1
	filterLZF        = int(C.SF_FILTER_LZF)
	filterZstd       = int(C.SF_FILTER_ZSTD)
	filterLZ4        = 32004
	filterBlosc      = 32001
	filterBitshuffle = 32008
)

// filterInfo says where one HDF5 filter comes from.
type filterInfo struct {
	name   string
	pkg    string // the Debian package providing its plugin ("" when none)
	plugin string // the plugin's file name in that package
	how    string // "builtin" (libhdf5 itself), "in-process" (h5filter.c) or "plugin"
	inDeps bool   // whether third_party/debian/packages.txt installs pkg
}

// knownFilters are HDF5's registered filter ids that Salt files may carry.
var knownFilters = map[int]filterInfo{
	1:                {name: "deflate (gzip)", how: "builtin"},
	2:                {name: "shuffle", how: "builtin"},
	3:                {name: "fletcher32", how: "builtin"},
	4:                {name: "szip", how: "builtin"},
	5:                {name: "nbit", how: "builtin"},
	6:                {name: "scaleoffset", how: "builtin"},
	307:              {name: "bzip2", pkg: "hdf5-filter-plugin", plugin: "libh5bz2.so", how: "plugin", inDeps: true},
	filterLZF:        {name: "lzf", pkg: "liblzf1", how: "in-process", inDeps: true},
	filterBlosc:      {name: "blosc", pkg: "hdf5-filter-plugin-blosc-serial", plugin: "libH5Zblosc.so", how: "plugin", inDeps: true},
	filterLZ4:        {name: "lz4", pkg: "hdf5-filter-plugin", plugin: "libh5lz4.so", how: "plugin", inDeps: true},
	filterBitshuffle: {name: "bitshuffle", pkg: "bitshuffle", plugin: "libh5bshuf.so", how: "plugin", inDeps: true},
	32013:            {name: "zfp", pkg: "hdf5-filter-plugin-zfp-serial", plugin: "libh5zzfp.so", how: "plugin"},
	filterZstd:       {name: "zstd", pkg: "libzstd1", how: "in-process", inDeps: true},
	32017:            {name: "sz", how: "plugin"},
	32024:            {name: "sz3", how: "plugin"},
	32026:            {name: "blosc2", how: "plugin"},
}

// filterSetup registers the in-process filters and extends the plugin
// search path once per process: HDF5's filter table is process-wide.
var filterSetup struct {
	once sync.Once
	err  error
}

// debianPluginDir is where Debian's HDF5 filter plugin packages install
// plugins for the serial libhdf5 that salt-ort links.
func debianPluginDir() string {
	triplet := map[string]string{"amd64": "x86_64-linux-gnu", "arm64": "aarch64-linux-gnu",
		"ppc64le": "powerpc64le-linux-gnu", "s390x": "s390x-linux-gnu", "riscv64": "riscv64-linux-gnu"}[runtime.GOARCH]
	if triplet == "" {
		triplet = runtime.GOARCH + "-linux-gnu"
	}
	return "/usr/lib/" + triplet + "/hdf5/serial/plugins"
}

// setupFilters makes LZF, Zstandard and Debian's filter plugins available
// to HDF5 in this process. It is cheap after the first call.
func setupFilters() error {
	filterSetup.once.Do(func() {
		switch C.fl_register() {
		case -1:
			filterSetup.err = fmt.Errorf("loader: cannot register the LZF filter (%d) with HDF5", filterLZF)
			return
		case -2:
			filterSetup.err = fmt.Errorf("loader: cannot register the Zstandard filter (%d) with HDF5", filterZstd)
			return
		}
		dir := debianPluginDir()
		for _, d := range pluginPath() {
			if filepath.Clean(d) == dir {
				return
			}
		}
		cd := C.CString(dir)
		defer C.free(unsafe.Pointer(cd))
		if C.fl_append_path(cd) < 0 {
			filterSetup.err = fmt.Errorf("loader: cannot add %s to HDF5's plugin search path", dir)
		}
	})
	return filterSetup.err
}

// pluginPath lists the directories HDF5 searches for filter plugins.
func pluginPath() []string {
	n := int(C.fl_num_paths())
	buf := (*C.char)(C.calloc(4096, 1))
	defer C.free(unsafe.Pointer(buf))
	var dirs []string
	for i := 0; i < n; i++ {
		if C.fl_path(C.uint(i), buf, 4096) > 0 {
			dirs = append(dirs, C.GoString(buf))
		}
	}
	return dirs
}

// filterAvailable reports whether HDF5 can apply filter id, loading its
// plugin if needed.
func filterAvailable(id int) bool {
	return C.fl_avail(C.int(id)) != 0
}

// h5Filter is one filter in a dataset's pipeline.
type h5Filter struct {
	id    int
	name  string // as stored in the file
	avail bool
}

// missingFilterError explains the filters of a dataset that this process
// cannot apply: which filter, which Debian package provides it, where
// plugins were searched and, when the plugin is there but does not load,
// why. It returns nil when every filter is available.
func missingFilterError(filters []h5Filter) error {
	var parts []string
	for _, f := range filters {
		if f.avail {
			continue
		}
		parts = append(parts, filterHelp(f.id, f.name, pluginPath()))
	}
	if len(parts) == 0 {
		return nil
	}
	return fmt.Errorf("%s", strings.Join(parts, "; "))
}

// filterHelp says why filter id (stored under name) is unavailable and how
// to get it, given the plugin directories searched.
func filterHelp(id int, name string, dirs []string) string {
	info, known := knownFilters[id]
	label := name
	if known {
		label = info.name
	} else if label == "" {
		label = "unnamed"
	}
	head := fmt.Sprintf("needs HDF5 filter %d (%s), which this libhdf5 cannot apply", id, label)
	where := "HDF5 searched for plugins in " + strings.Join(dirs, ":")
	if len(dirs) == 0 {
		where = "HDF5 has no plugin directory to search"
	}
	if os.Getenv("HDF5_PLUGIN_PRELOAD") == "::" {
		where += "; HDF5_PLUGIN_PRELOAD=:: disables plugins"
	}
	switch {
	case !known:
		return fmt.Sprintf("%s: salt-ort does not know this filter; put its plugin in a directory named by HDF5_PLUGIN_PATH (%s), or rewrite the file with gzip or lzf compression", head, where)
	case info.how == "builtin":
		return fmt.Sprintf("%s: it is built into HDF5, but this build of libhdf5 lacks it; reinstall Debian's libhdf5-dev (`make deps`)", head)
	case info.how == "in-process":
		return fmt.Sprintf("%s: salt-ort registers it from Debian's %s, which failed; reinstall it with `make deps`", head, info.pkg)
	case info.pkg == "":
		return fmt.Sprintf("%s: Debian has no plugin for it; put a build of its plugin in a directory named by HDF5_PLUGIN_PATH (%s), or rewrite the file with gzip or lzf compression", head, where)
	}
	for _, d := range dirs {
		p := filepath.Join(d, info.plugin)
		if _, err := os.Stat(p); err != nil {
			continue
		}
		if why := dlopenError(p); why != "" {
			return fmt.Sprintf("%s: its plugin %s is installed but does not load (%s); reinstall Debian's %s", head, p, why, info.pkg)
		}
	}
	install := fmt.Sprintf("install Debian's %s (`make deps` does)", info.pkg)
	if !info.inDeps {
		install = fmt.Sprintf("install Debian's %s (apt-get install %s; `make deps` does not)", info.pkg, info.pkg)
	}
	return fmt.Sprintf("%s: %s; %s", head, install, where)
}

// dlopenError loads a shared object, binding every symbol at once, and returns
// the dynamic loader's complaint, or "" when it loads.
func dlopenError(path string) string {
	cp := C.CString(path)
	defer C.free(unsafe.Pointer(cp))
	buf := (*C.char)(C.calloc(1024, 1))
	defer C.free(unsafe.Pointer(buf))
	C.fl_dlopen_error(cp, buf, 1024)
	return C.GoString(buf)
}
