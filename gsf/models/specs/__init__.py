"""Layer graphs of the Inception backbones, as plain data.

Each graph is a tuple of rows ``(module_id, op, params, inputs, output)`` in execution order, transcribed
from the GSF authors' model definitions (the release's ``backbones/bn_inception_gsf.yaml`` and
``backbones/inceptionv3_gsf.yaml``; conventions in docs/gsf-operator.md section 2). ``module_id`` is the
state-dict prefix of the layer in the authors' checkpoints; ``inputs`` and ``output`` name tensors
(``"data"`` is the network input). The meaning of ``params`` depends on ``op``:

- ``"conv"``: ``(out_channels, (kernel_h, kernel_w), (stride_h, stride_w), (pad_h, pad_w))``, with bias.
- ``"bn"``, ``"relu"``, ``"global_avg_pool"``: ``()``.
- ``"max_pool"``, ``"avg_pool"``: ``(kernel, stride, padding)``, ceil mode, average counting padding.
- ``"concat"``: ``(out_channels,)``, inputs concatenated along channels in the order listed.
- ``"temporal"``: ``(channels,)``, the authors' GSF placement (docs/gsf-operator.md section 2): a temporal module
  after the conv that produces its input, before that conv's BN; an identity when none is inserted.
- ``"linear"``: ``(out_features,)``, the ImageNet classifier (not built: the video model replaces it).
"""
