// Package testkit is the home of salt-ort's test harnesses, one package
// each: fixture (small generated datasets and configurations), salttwin
// (independent PyTorch implementations of Salt's models), torchref (runs
// scripts with Debian's python3-torch), fakenccl (a stand-in for NCCL on
// machines without a GPU), fuzztest (what the fuzz targets share) and
// examplerun (the tiny trained run Example functions start from).
//
// Only tests import them; cmd/salt-ort's TestPackageMap fails where
// library code does.
package testkit
