/* data_loader_mpi - run with mpirun -np 3: every rank opens the same file and hashes the
 * batches bh_keys with different prefetch settings and request orders; rank 0 gathers the
 * hashes and checks they are bit-identical, and that another seed differs.
 *   data_loader_mpi SCRATCH_FILE.h5 */
#include <mpi.h>
#include <stdio.h>
#include <string.h>

#include "batch_hash.h"
#include "feed/check.h"
#include "feed_test.h"

int main(int argc, char **argv) {
    CHECK_MPI(MPI_Init(&argc, &argv));
    int rank = 0, size = 1;
    CHECK_MPI(MPI_Comm_rank(MPI_COMM_WORLD, &rank));
    CHECK_MPI(MPI_Comm_size(MPI_COMM_WORLD, &size));
    feed_set_error_rank(rank, size);
    FEED_CHECK(argc == 2, "usage: data_loader_mpi FILE.h5", "expected one argument");
    if (rank == 0) bh_write_synthetic(argv[1]);
    CHECK_MPI(MPI_Barrier(MPI_COMM_WORLD));

    feed_dataset *ds = feed_dataset_open(argv[1]);
    /* rank 0 synchronous, rank 1 one prefetch thread, rank 2 two threads and reversed order */
    feed_loader_config cfg = bh_config(1, rank == 0 ? 0 : 2 * rank, rank);
    feed_loader *ld = feed_loader_create(ds, &cfg);
    char mine[BH_NUM_KEYS][65];
    for (int k = 0; k < BH_NUM_KEYS; k++) {
        int key = rank == 2 ? BH_NUM_KEYS - 1 - k : k;
        bh_hash_batch(ld, bh_keys[key][0], bh_keys[key][1], mine[key]);
    }
    feed_loader_config other_cfg = bh_config(2, 0, 0);
    feed_loader *other = feed_loader_create(ds, &other_cfg);
    char other_hex[65];
    bh_hash_batch(other, bh_keys[0][0], bh_keys[0][1], other_hex);

    char all[16][BH_NUM_KEYS][65];
    FEED_CHECK(size <= 16, "run with at most 16 ranks", "%d ranks", size);
    CHECK_MPI(MPI_Gather(mine, (int)sizeof mine, MPI_CHAR, all, (int)sizeof mine, MPI_CHAR, 0, MPI_COMM_WORLD));
    int code = 0;
    if (rank == 0) {
        EXPECT_INT_EQ(size, 3);
        for (int r = 1; r < size; r++)
            for (int k = 0; k < BH_NUM_KEYS; k++) {
                EXPECT(strcmp(all[r][k], all[0][k]) == 0);
                if (strcmp(all[r][k], all[0][k]) != 0)
                    fprintf(stderr, "rank %d key %d: %s vs rank 0: %s\n", r, k, all[r][k], all[0][k]);
            }
        EXPECT(strcmp(other_hex, all[0][0]) != 0); /* another seed, another batch */
        code = feed_test_finish("data_loader_mpi");
    }
    CHECK_MPI(MPI_Bcast(&code, 1, MPI_INT, 0, MPI_COMM_WORLD));
    feed_loader_destroy(other);
    feed_loader_destroy(ld);
    feed_dataset_close(ds);
    CHECK_MPI(MPI_Finalize());
    return code;
}
