/* version_info.c - `feed_mpi --version`: our version and git id, and the versions of the
 * libraries actually loaded at run time (they can differ from the headers on a cluster). */
#include <cblas.h>
#include <hdf5.h>
#include <mpi.h>
#include <oneapi/dnnl/dnnl.h>
#include <stdio.h>
#include <string.h>

#include "feed/app.h"
#include "feed/version_gen.h"

void feed_print_version(FILE *out) {
    fprintf(out, "feed_mpi %s (git %s)\n", FEED_VERSION, FEED_GIT_ID);
    const dnnl_version_t *v = dnnl_version();
    fprintf(out, "  oneDNN   %d.%d.%d (git %s, cpu runtime %s)\n", v->major, v->minor, v->patch,
            v->hash, v->cpu_runtime == DNNL_RUNTIME_OMP ? "OpenMP" : "other");
    unsigned maj = 0, min = 0, rel = 0;
    H5get_libversion(&maj, &min, &rel);
    fprintf(out, "  HDF5     %u.%u.%u\n", maj, min, rel);
    char mpi[MPI_MAX_LIBRARY_VERSION_STRING];
    int len = 0;
    MPI_Get_library_version(mpi, &len);
    char *nl = strchr(mpi, '\n');
    if (nl) *nl = 0;
    char *comma = strchr(mpi, ',');
    if (comma) *comma = 0; /* Open MPI appends its package, ident and repo date */
    int ver = 0, sub = 0;
    MPI_Get_version(&ver, &sub);
    fprintf(out, "  MPI      %s (standard %d.%d)\n", mpi, ver, sub);
    fprintf(out, "  OpenBLAS %s\n", openblas_get_config());
}
