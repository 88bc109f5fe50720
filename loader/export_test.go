package loader

// Test helpers shared with the external test package loader_test, whose
// tests read files made by gendata (which imports this package).
var (
	CollectEpoch = collect
	NeedH5py     = needH5py
	PythonH5py   = pythonH5py
)
