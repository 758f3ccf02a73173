/* distill_modules.h - the small trainable networks distillation methods put beside the
 * student or a teacher, built on the engine (net.h). Keys are those of tools/torch_models.py
 * (NTL, Translator, Paraphraser, Regressor), which follow the official FEED and FT code.
 *
 *   NTL (FEED)         conv1..3: 3x3 C_s -> C_t -> C_t -> C_t, each + (BN bn1..3,) LeakyReLU(0.1)
 *   translator (FT)    conv0..2: 3x3 C_s -> C_s -> C_f -> C_f, each + LeakyReLU(0.1)
 *   paraphraser (FT)   encoder conv0..2: 3x3 C_t -> C_t -> C_f -> C_f, decoder deconv0..2 (3x3
 *                      transposed) C_f -> C_f -> C_t -> C_t, each + LeakyReLU(0.1)
 *   regressor (L1)     conv: 1x1 C_s -> C_t (where the channels differ), no activation
 * Every convolution has a bias, stride 1 and padding 1 (0 for 1x1). NTL and regressor weights
 * are Kaiming-normal (fan_out), their biases PyTorch's default uniform; the translator and
 * the paraphraser keep PyTorch's default initialisation throughout, as FT's official code.
 * C_f = round(k * C_t) is FT's factor width.
 * Each builder plans the module for inputs (batch, c_in, h, w) and returns a net the caller
 * frees; training modules also compute the gradient into their input (the student's map).
 */
#ifndef FEED_DISTILL_MODULES_H
#define FEED_DISTILL_MODULES_H

#include <stdint.h>

#include "feed/net.h"

feed_net *feed_ntl_build(int batch, int c_s, int c_t, int h, int w, int bn, uint64_t seed);
feed_net *feed_translator_build(int batch, int c_s, int c_f, int h, int w, uint64_t seed);
/* encoder_only: conv0..2 only (the factor extractor of a trained paraphraser);
 * inference_only: no backward (a frozen module). The full paraphraser's input needs no gradient. */
feed_net *feed_paraphraser_build(int batch, int c_t, int c_f, int h, int w, uint64_t seed, int encoder_only,
                                 int inference_only);
feed_net *feed_regressor_build(int batch, int c_s, int c_t, int h, int w, uint64_t seed);

/* Copy every parameter and buffer of dst from the entry of src with the same name (a trained
 * paraphraser's encoder into its inference net); a missing name is a bug. */
void feed_net_copy_params(feed_net *dst, const feed_net *src);

#endif
