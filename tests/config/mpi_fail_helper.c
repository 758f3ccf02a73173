/* mpi_fail_helper.c - run under mpirun by test_mpi_errors: rank FAIL_RANK (argv[1]) fails
 * with FEED_FAIL while the other ranks wait in a barrier that can never complete. The job
 * must end promptly, non-zero, with that rank's message. */
#include <mpi.h>
#include <stdlib.h>
#include <time.h>

#include "feed/check.h"

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    feed_set_error_rank(rank, size);
    int fail_rank = argc > 1 ? atoi(argv[1]) : 1;
    if (rank == fail_rank) {
        nanosleep(&(struct timespec){0, 200000000}, NULL); /* let the others reach the barrier */
        FEED_FAIL("this failure is injected by the test", "simulated failure reading '%s'", "teacher_2.h5");
    }
    MPI_Barrier(MPI_COMM_WORLD);
    MPI_Finalize();
    return 0;
}
