/* data_batch_hashes - print the SHA-256 of the batches bh_keys of a data-set file, one line
 * per key, so separate processes can be compared:
 *   data_batch_hashes FILE SEED PREFETCH_DEPTH PREFETCH_THREADS [--reverse] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch_hash.h"

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: data_batch_hashes FILE SEED PREFETCH_DEPTH PREFETCH_THREADS [--reverse]\n");
        return 2;
    }
    const int reverse = argc > 5 && strcmp(argv[5], "--reverse") == 0;
    feed_dataset *ds = feed_dataset_open(argv[1]);
    feed_loader_config cfg = bh_config(strtoull(argv[2], NULL, 10), atoi(argv[3]), atoi(argv[4]));
    feed_loader *ld = feed_loader_create(ds, &cfg);
    char hex[BH_NUM_KEYS][65];
    for (int k = 0; k < BH_NUM_KEYS; k++) {
        int key = reverse ? BH_NUM_KEYS - 1 - k : k;
        bh_hash_batch(ld, bh_keys[key][0], bh_keys[key][1], hex[key]);
    }
    for (int k = 0; k < BH_NUM_KEYS; k++)
        printf("epoch %lld step %lld sha256 %s\n", (long long)bh_keys[k][0], (long long)bh_keys[k][1], hex[k]);
    feed_loader_destroy(ld);
    feed_dataset_close(ds);
    return 0;
}
