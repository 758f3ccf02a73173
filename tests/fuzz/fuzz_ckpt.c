/* fuzz_ckpt.c - libFuzzer target: the checkpoint reader on arbitrary files.
 *
 * Input: the bytes of a file; written to /dev/shm and read as `feed_mpi eval` and a resume
 * read a checkpoint (fuzz_ckpt_read.h). Mutations of a real checkpoint mostly meet HDF5's
 * metadata checksums and our CRC32s; fuzz_ckpt_gen.c builds well-formed files instead.
 */
#include "fuzz_ckpt_read.h"
#include "fuzz_common.h"

static void read_ckpt(void *path) {
    fuzz_ckpt_read(path);
    fuzz_require_no_open_h5("the checkpoint reads");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_init();
    const char *path = fuzz_tmp_path("ckpt.h5");
    fuzz_write_file(path, data, size);
    if (fuzz_catch(read_ckpt, (void *)path) != 0) fuzz_ckpt_read_cleanup();
    return 0;
}
