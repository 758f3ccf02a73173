/* teacher_net.c - a frozen teacher from its checkpoint, checked against the data set. */
#include "feed/check.h"
#include "feed/pfeed.h"
#include "feed/train.h"

feed_net *feed_pfeed_load_teacher(const char *path, const feed_dataset *ds, const char *data_path, int batch) {
    feed_ckpt *ck = feed_ckpt_open(path);
    feed_ckpt_require_model(ck, NULL, ds->num_classes, ds->channels);
    feed_model_spec spec = feed_model_spec_from_checkpoint(ck, batch);
    if (spec.height != ds->height || spec.width != ds->width)
        FEED_INPUT_ERROR("teachers must be trained on images of the data set's size",
                         "teacher %s was trained on %dx%d images, %s has %dx%d", path, spec.height,
                         spec.width, data_path, ds->height, ds->width);
    feed_net *net = feed_model_create(&spec, 0, true); /* eval mode, BN folded into the convs */
    feed_net_load(ck, net, "model");
    feed_ckpt_close(ck);
    int dims[4];
    FEED_CHECK(feed_net_tap(net, "final", dims), "this is a bug", "teacher model %s has no 'final' tap", path);
    return net;
}
