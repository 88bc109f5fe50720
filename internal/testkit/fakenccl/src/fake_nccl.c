// A stand-in for libnccl.so.2 and the CUDA runtime functions package nccl
// uses, for testing on machines without a GPU: "device" memory is host
// memory and the reduction runs over MPI (already initialised by the Go
// side). It checks what real NCCL would need: every rank passes the same
// unique id, ranks and sizes agree, and the reduction is float32 sum.
#include <mpi.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

typedef struct { char internal[128]; } ncclUniqueId;
typedef struct { int rank, size; } comm_t;
static comm_t the_comm;

int ncclGetVersion(int *v) { *v = 22703; return 0; }

int ncclGetUniqueId(ncclUniqueId *id) {
	memset(id, 0, sizeof *id);
	snprintf(id->internal, sizeof id->internal, "fake-nccl-%d", (int)getpid());
	return 0;
}

int ncclCommInitRank(void **comm, int nranks, ncclUniqueId id, int rank) {
	int size, me;
	MPI_Comm_size(MPI_COMM_WORLD, &size);
	MPI_Comm_rank(MPI_COMM_WORLD, &me);
	if (size != nranks || me != rank) return 4; /* ncclInvalidArgument */
	ncclUniqueId first = id;
	MPI_Bcast(&first, sizeof first, MPI_BYTE, 0, MPI_COMM_WORLD);
	int same = memcmp(&first, &id, sizeof id) == 0, all;
	MPI_Allreduce(&same, &all, 1, MPI_INT, MPI_LAND, MPI_COMM_WORLD);
	if (!all) return 5; /* ncclInvalidUsage: the ranks passed different ids */
	the_comm.rank = rank;
	the_comm.size = nranks;
	*comm = &the_comm;
	return 0;
}

int ncclAllReduce(const void *send, void *recv, size_t count, int type, int op, void *comm, void *stream) {
	(void)stream;
	if (comm != &the_comm || type != 7 || op != 0) return 4;
	const void *src = send == recv ? MPI_IN_PLACE : send;
	return MPI_Allreduce(src, recv, (int)count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD) == MPI_SUCCESS ? 0 : 2;
}

int ncclCommDestroy(void *comm) { return comm == &the_comm ? 0 : 4; }

const char *ncclGetErrorString(int rc) {
	switch (rc) {
	case 4: return "invalid argument";
	case 5: return "invalid usage";
	}
	return "unhandled error";
}

int cudaSetDevice(int device) { return device < 0 ? 101 : 0; }
int cudaDeviceSynchronize(void) { return 0; }
int cudaStreamSynchronize(void *stream) { (void)stream; return 0; }
const char *cudaGetErrorString(int rc) { (void)rc; return "cuda error"; }
