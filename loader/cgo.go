package loader

// The C flags of every cgo file of the package (cgo joins them): HDF5
// through pkg-config's hdf5-serial, which Debian's libhdf5-dev installs for
// its serial build off the default paths (another system names its own
// with PKG_CONFIG_PATH), and the filters registered in-process (LZF,
// Zstandard; filters.go).

/*
#cgo pkg-config: hdf5-serial
#cgo LDFLAGS: -llzf -lzstd -ldl
*/
import "C"
