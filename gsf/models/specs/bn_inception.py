"""TSN's BN-Inception (Inception with batch normalisation), as the GSF authors build it.

Transcribed from the GSF release's ``backbones/bn_inception_gsf.yaml`` (docs/gsf-operator.md section 2); row format in
``gsf.models.specs``. 224 px input, 1024-d features after the global pool. The 10 ``temporal`` rows are
the authors' GSF placement (docs/gsf-operator.md section 2); the 4d row's output name (``gsf_inception_4d_1x1c``) is
spelled as in the authors' file.
"""

GRAPH = (
    ("conv1_7x7_s2", "conv", (64, (7, 7), (2, 2), (3, 3)), ("data",), "conv1_7x7_s2"),
    ("conv1_7x7_s2_bn", "bn", (), ("conv1_7x7_s2",), "conv1_7x7_s2_bn"),
    ("conv1_relu_7x7", "relu", (), ("conv1_7x7_s2_bn",), "conv1_7x7_s2_bn"),
    ("pool1_3x3_s2", "max_pool", (3, 2, 0), ("conv1_7x7_s2_bn",), "pool1_3x3_s2"),
    ("conv2_3x3_reduce", "conv", (64, (1, 1), (1, 1), (0, 0)), ("pool1_3x3_s2",), "conv2_3x3_reduce"),
    ("conv2_3x3_reduce_bn", "bn", (), ("conv2_3x3_reduce",), "conv2_3x3_reduce_bn"),
    ("conv2_relu_3x3_reduce", "relu", (), ("conv2_3x3_reduce_bn",), "conv2_3x3_reduce_bn"),
    ("conv2_3x3", "conv", (192, (3, 3), (1, 1), (1, 1)), ("conv2_3x3_reduce_bn",), "conv2_3x3"),
    ("conv2_3x3_bn", "bn", (), ("conv2_3x3",), "conv2_3x3_bn"),
    ("conv2_relu_3x3", "relu", (), ("conv2_3x3_bn",), "conv2_3x3_bn"),
    ("pool2_3x3_s2", "max_pool", (3, 2, 0), ("conv2_3x3_bn",), "pool2_3x3_s2"),
    ("inception_3a_1x1", "conv", (64, (1, 1), (1, 1), (0, 0)), ("pool2_3x3_s2",), "inception_3a_1x1"),
    ("gsf_inception_3a_1x1", "temporal", (64,), ("inception_3a_1x1",), "gsf_inception_3a_1x1"),
    ("inception_3a_1x1_bn", "bn", (), ("gsf_inception_3a_1x1",), "inception_3a_1x1_bn"),
    ("inception_3a_relu_1x1", "relu", (), ("inception_3a_1x1_bn",), "inception_3a_1x1_bn"),
    (
        "inception_3a_3x3_reduce", "conv", (64, (1, 1), (1, 1), (0, 0)), ("pool2_3x3_s2",),
        "inception_3a_3x3_reduce",
    ),
    ("inception_3a_3x3_reduce_bn", "bn", (), ("inception_3a_3x3_reduce",), "inception_3a_3x3_reduce_bn"),
    (
        "inception_3a_relu_3x3_reduce", "relu", (), ("inception_3a_3x3_reduce_bn",),
        "inception_3a_3x3_reduce_bn",
    ),
    (
        "inception_3a_3x3", "conv", (64, (3, 3), (1, 1), (1, 1)), ("inception_3a_3x3_reduce_bn",),
        "inception_3a_3x3",
    ),
    ("inception_3a_3x3_bn", "bn", (), ("inception_3a_3x3",), "inception_3a_3x3_bn"),
    ("inception_3a_relu_3x3", "relu", (), ("inception_3a_3x3_bn",), "inception_3a_3x3_bn"),
    (
        "inception_3a_double_3x3_reduce", "conv", (64, (1, 1), (1, 1), (0, 0)), ("pool2_3x3_s2",),
        "inception_3a_double_3x3_reduce",
    ),
    (
        "inception_3a_double_3x3_reduce_bn", "bn", (), ("inception_3a_double_3x3_reduce",),
        "inception_3a_double_3x3_reduce_bn",
    ),
    (
        "inception_3a_relu_double_3x3_reduce", "relu", (), ("inception_3a_double_3x3_reduce_bn",),
        "inception_3a_double_3x3_reduce_bn",
    ),
    (
        "inception_3a_double_3x3_1", "conv", (96, (3, 3), (1, 1), (1, 1)),
        ("inception_3a_double_3x3_reduce_bn",), "inception_3a_double_3x3_1",
    ),
    (
        "inception_3a_double_3x3_1_bn", "bn", (), ("inception_3a_double_3x3_1",),
        "inception_3a_double_3x3_1_bn",
    ),
    (
        "inception_3a_relu_double_3x3_1", "relu", (), ("inception_3a_double_3x3_1_bn",),
        "inception_3a_double_3x3_1_bn",
    ),
    (
        "inception_3a_double_3x3_2", "conv", (96, (3, 3), (1, 1), (1, 1)), ("inception_3a_double_3x3_1_bn",),
        "inception_3a_double_3x3_2",
    ),
    (
        "inception_3a_double_3x3_2_bn", "bn", (), ("inception_3a_double_3x3_2",),
        "inception_3a_double_3x3_2_bn",
    ),
    (
        "inception_3a_relu_double_3x3_2", "relu", (), ("inception_3a_double_3x3_2_bn",),
        "inception_3a_double_3x3_2_bn",
    ),
    ("inception_3a_pool", "avg_pool", (3, 1, 1), ("pool2_3x3_s2",), "inception_3a_pool"),
    (
        "inception_3a_pool_proj", "conv", (32, (1, 1), (1, 1), (0, 0)), ("inception_3a_pool",),
        "inception_3a_pool_proj",
    ),
    ("inception_3a_pool_proj_bn", "bn", (), ("inception_3a_pool_proj",), "inception_3a_pool_proj_bn"),
    ("inception_3a_relu_pool_proj", "relu", (), ("inception_3a_pool_proj_bn",), "inception_3a_pool_proj_bn"),
    (
        "inception_3a_output", "concat", (256,),
        (
            "inception_3a_1x1_bn",
            "inception_3a_3x3_bn",
            "inception_3a_double_3x3_2_bn",
            "inception_3a_pool_proj_bn",
        ),
        "inception_3a_output",
    ),
    ("inception_3b_1x1", "conv", (64, (1, 1), (1, 1), (0, 0)), ("inception_3a_output",), "inception_3b_1x1"),
    ("gsf_inception_3b_1x1", "temporal", (64,), ("inception_3b_1x1",), "gsf_inception_3b_1x1"),
    ("inception_3b_1x1_bn", "bn", (), ("gsf_inception_3b_1x1",), "inception_3b_1x1_bn"),
    ("inception_3b_relu_1x1", "relu", (), ("inception_3b_1x1_bn",), "inception_3b_1x1_bn"),
    (
        "inception_3b_3x3_reduce", "conv", (64, (1, 1), (1, 1), (0, 0)), ("inception_3a_output",),
        "inception_3b_3x3_reduce",
    ),
    ("inception_3b_3x3_reduce_bn", "bn", (), ("inception_3b_3x3_reduce",), "inception_3b_3x3_reduce_bn"),
    (
        "inception_3b_relu_3x3_reduce", "relu", (), ("inception_3b_3x3_reduce_bn",),
        "inception_3b_3x3_reduce_bn",
    ),
    (
        "inception_3b_3x3", "conv", (96, (3, 3), (1, 1), (1, 1)), ("inception_3b_3x3_reduce_bn",),
        "inception_3b_3x3",
    ),
    ("inception_3b_3x3_bn", "bn", (), ("inception_3b_3x3",), "inception_3b_3x3_bn"),
    ("inception_3b_relu_3x3", "relu", (), ("inception_3b_3x3_bn",), "inception_3b_3x3_bn"),
    (
        "inception_3b_double_3x3_reduce", "conv", (64, (1, 1), (1, 1), (0, 0)), ("inception_3a_output",),
        "inception_3b_double_3x3_reduce",
    ),
    (
        "inception_3b_double_3x3_reduce_bn", "bn", (), ("inception_3b_double_3x3_reduce",),
        "inception_3b_double_3x3_reduce_bn",
    ),
    (
        "inception_3b_relu_double_3x3_reduce", "relu", (), ("inception_3b_double_3x3_reduce_bn",),
        "inception_3b_double_3x3_reduce_bn",
    ),
    (
        "inception_3b_double_3x3_1", "conv", (96, (3, 3), (1, 1), (1, 1)),
        ("inception_3b_double_3x3_reduce_bn",), "inception_3b_double_3x3_1",
    ),
    (
        "inception_3b_double_3x3_1_bn", "bn", (), ("inception_3b_double_3x3_1",),
        "inception_3b_double_3x3_1_bn",
    ),
    (
        "inception_3b_relu_double_3x3_1", "relu", (), ("inception_3b_double_3x3_1_bn",),
        "inception_3b_double_3x3_1_bn",
    ),
    (
        "inception_3b_double_3x3_2", "conv", (96, (3, 3), (1, 1), (1, 1)), ("inception_3b_double_3x3_1_bn",),
        "inception_3b_double_3x3_2",
    ),
    (
        "inception_3b_double_3x3_2_bn", "bn", (), ("inception_3b_double_3x3_2",),
        "inception_3b_double_3x3_2_bn",
    ),
    (
        "inception_3b_relu_double_3x3_2", "relu", (), ("inception_3b_double_3x3_2_bn",),
        "inception_3b_double_3x3_2_bn",
    ),
    ("inception_3b_pool", "avg_pool", (3, 1, 1), ("inception_3a_output",), "inception_3b_pool"),
    (
        "inception_3b_pool_proj", "conv", (64, (1, 1), (1, 1), (0, 0)), ("inception_3b_pool",),
        "inception_3b_pool_proj",
    ),
    ("inception_3b_pool_proj_bn", "bn", (), ("inception_3b_pool_proj",), "inception_3b_pool_proj_bn"),
    ("inception_3b_relu_pool_proj", "relu", (), ("inception_3b_pool_proj_bn",), "inception_3b_pool_proj_bn"),
    (
        "inception_3b_output", "concat", (320,),
        (
            "inception_3b_1x1_bn",
            "inception_3b_3x3_bn",
            "inception_3b_double_3x3_2_bn",
            "inception_3b_pool_proj_bn",
        ),
        "inception_3b_output",
    ),
    (
        "inception_3c_3x3_reduce", "conv", (128, (1, 1), (1, 1), (0, 0)), ("inception_3b_output",),
        "inception_3c_3x3_reduce",
    ),
    (
        "gsf_inception_3c_3x3_reduce", "temporal", (128,), ("inception_3c_3x3_reduce",),
        "gsf_inception_3c_3x3_reduce",
    ),
    ("inception_3c_3x3_reduce_bn", "bn", (), ("gsf_inception_3c_3x3_reduce",), "inception_3c_3x3_reduce_bn"),
    (
        "inception_3c_relu_3x3_reduce", "relu", (), ("inception_3c_3x3_reduce_bn",),
        "inception_3c_3x3_reduce_bn",
    ),
    (
        "inception_3c_3x3", "conv", (160, (3, 3), (2, 2), (1, 1)), ("inception_3c_3x3_reduce_bn",),
        "inception_3c_3x3",
    ),
    ("inception_3c_3x3_bn", "bn", (), ("inception_3c_3x3",), "inception_3c_3x3_bn"),
    ("inception_3c_relu_3x3", "relu", (), ("inception_3c_3x3_bn",), "inception_3c_3x3_bn"),
    (
        "inception_3c_double_3x3_reduce", "conv", (64, (1, 1), (1, 1), (0, 0)), ("inception_3b_output",),
        "inception_3c_double_3x3_reduce",
    ),
    (
        "inception_3c_double_3x3_reduce_bn", "bn", (), ("inception_3c_double_3x3_reduce",),
        "inception_3c_double_3x3_reduce_bn",
    ),
    (
        "inception_3c_relu_double_3x3_reduce", "relu", (), ("inception_3c_double_3x3_reduce_bn",),
        "inception_3c_double_3x3_reduce_bn",
    ),
    (
        "inception_3c_double_3x3_1", "conv", (96, (3, 3), (1, 1), (1, 1)),
        ("inception_3c_double_3x3_reduce_bn",), "inception_3c_double_3x3_1",
    ),
    (
        "inception_3c_double_3x3_1_bn", "bn", (), ("inception_3c_double_3x3_1",),
        "inception_3c_double_3x3_1_bn",
    ),
    (
        "inception_3c_relu_double_3x3_1", "relu", (), ("inception_3c_double_3x3_1_bn",),
        "inception_3c_double_3x3_1_bn",
    ),
    (
        "inception_3c_double_3x3_2", "conv", (96, (3, 3), (2, 2), (1, 1)), ("inception_3c_double_3x3_1_bn",),
        "inception_3c_double_3x3_2",
    ),
    (
        "inception_3c_double_3x3_2_bn", "bn", (), ("inception_3c_double_3x3_2",),
        "inception_3c_double_3x3_2_bn",
    ),
    (
        "inception_3c_relu_double_3x3_2", "relu", (), ("inception_3c_double_3x3_2_bn",),
        "inception_3c_double_3x3_2_bn",
    ),
    ("inception_3c_pool", "max_pool", (3, 2, 0), ("inception_3b_output",), "inception_3c_pool"),
    (
        "inception_3c_output", "concat", (576,),
        ("inception_3c_3x3_bn", "inception_3c_double_3x3_2_bn", "inception_3c_pool"), "inception_3c_output",
    ),
    ("inception_4a_1x1", "conv", (224, (1, 1), (1, 1), (0, 0)), ("inception_3c_output",), "inception_4a_1x1"),
    ("gsf_inception_4a_1x1", "temporal", (224,), ("inception_4a_1x1",), "gsf_inception_4a_1x1"),
    ("inception_4a_1x1_bn", "bn", (), ("gsf_inception_4a_1x1",), "inception_4a_1x1_bn"),
    ("inception_4a_relu_1x1", "relu", (), ("inception_4a_1x1_bn",), "inception_4a_1x1_bn"),
    (
        "inception_4a_3x3_reduce", "conv", (64, (1, 1), (1, 1), (0, 0)), ("inception_3c_output",),
        "inception_4a_3x3_reduce",
    ),
    ("inception_4a_3x3_reduce_bn", "bn", (), ("inception_4a_3x3_reduce",), "inception_4a_3x3_reduce_bn"),
    (
        "inception_4a_relu_3x3_reduce", "relu", (), ("inception_4a_3x3_reduce_bn",),
        "inception_4a_3x3_reduce_bn",
    ),
    (
        "inception_4a_3x3", "conv", (96, (3, 3), (1, 1), (1, 1)), ("inception_4a_3x3_reduce_bn",),
        "inception_4a_3x3",
    ),
    ("inception_4a_3x3_bn", "bn", (), ("inception_4a_3x3",), "inception_4a_3x3_bn"),
    ("inception_4a_relu_3x3", "relu", (), ("inception_4a_3x3_bn",), "inception_4a_3x3_bn"),
    (
        "inception_4a_double_3x3_reduce", "conv", (96, (1, 1), (1, 1), (0, 0)), ("inception_3c_output",),
        "inception_4a_double_3x3_reduce",
    ),
    (
        "inception_4a_double_3x3_reduce_bn", "bn", (), ("inception_4a_double_3x3_reduce",),
        "inception_4a_double_3x3_reduce_bn",
    ),
    (
        "inception_4a_relu_double_3x3_reduce", "relu", (), ("inception_4a_double_3x3_reduce_bn",),
        "inception_4a_double_3x3_reduce_bn",
    ),
    (
        "inception_4a_double_3x3_1", "conv", (128, (3, 3), (1, 1), (1, 1)),
        ("inception_4a_double_3x3_reduce_bn",), "inception_4a_double_3x3_1",
    ),
    (
        "inception_4a_double_3x3_1_bn", "bn", (), ("inception_4a_double_3x3_1",),
        "inception_4a_double_3x3_1_bn",
    ),
    (
        "inception_4a_relu_double_3x3_1", "relu", (), ("inception_4a_double_3x3_1_bn",),
        "inception_4a_double_3x3_1_bn",
    ),
    (
        "inception_4a_double_3x3_2", "conv", (128, (3, 3), (1, 1), (1, 1)), ("inception_4a_double_3x3_1_bn",),
        "inception_4a_double_3x3_2",
    ),
    (
        "inception_4a_double_3x3_2_bn", "bn", (), ("inception_4a_double_3x3_2",),
        "inception_4a_double_3x3_2_bn",
    ),
    (
        "inception_4a_relu_double_3x3_2", "relu", (), ("inception_4a_double_3x3_2_bn",),
        "inception_4a_double_3x3_2_bn",
    ),
    ("inception_4a_pool", "avg_pool", (3, 1, 1), ("inception_3c_output",), "inception_4a_pool"),
    (
        "inception_4a_pool_proj", "conv", (128, (1, 1), (1, 1), (0, 0)), ("inception_4a_pool",),
        "inception_4a_pool_proj",
    ),
    ("inception_4a_pool_proj_bn", "bn", (), ("inception_4a_pool_proj",), "inception_4a_pool_proj_bn"),
    ("inception_4a_relu_pool_proj", "relu", (), ("inception_4a_pool_proj_bn",), "inception_4a_pool_proj_bn"),
    (
        "inception_4a_output", "concat", (576,),
        (
            "inception_4a_1x1_bn",
            "inception_4a_3x3_bn",
            "inception_4a_double_3x3_2_bn",
            "inception_4a_pool_proj_bn",
        ),
        "inception_4a_output",
    ),
    ("inception_4b_1x1", "conv", (192, (1, 1), (1, 1), (0, 0)), ("inception_4a_output",), "inception_4b_1x1"),
    ("gsf_inception_4b_1x1", "temporal", (192,), ("inception_4b_1x1",), "gsf_inception_4b_1x1"),
    ("inception_4b_1x1_bn", "bn", (), ("gsf_inception_4b_1x1",), "inception_4b_1x1_bn"),
    ("inception_4b_relu_1x1", "relu", (), ("inception_4b_1x1_bn",), "inception_4b_1x1_bn"),
    (
        "inception_4b_3x3_reduce", "conv", (96, (1, 1), (1, 1), (0, 0)), ("inception_4a_output",),
        "inception_4b_3x3_reduce",
    ),
    ("inception_4b_3x3_reduce_bn", "bn", (), ("inception_4b_3x3_reduce",), "inception_4b_3x3_reduce_bn"),
    (
        "inception_4b_relu_3x3_reduce", "relu", (), ("inception_4b_3x3_reduce_bn",),
        "inception_4b_3x3_reduce_bn",
    ),
    (
        "inception_4b_3x3", "conv", (128, (3, 3), (1, 1), (1, 1)), ("inception_4b_3x3_reduce_bn",),
        "inception_4b_3x3",
    ),
    ("inception_4b_3x3_bn", "bn", (), ("inception_4b_3x3",), "inception_4b_3x3_bn"),
    ("inception_4b_relu_3x3", "relu", (), ("inception_4b_3x3_bn",), "inception_4b_3x3_bn"),
    (
        "inception_4b_double_3x3_reduce", "conv", (96, (1, 1), (1, 1), (0, 0)), ("inception_4a_output",),
        "inception_4b_double_3x3_reduce",
    ),
    (
        "inception_4b_double_3x3_reduce_bn", "bn", (), ("inception_4b_double_3x3_reduce",),
        "inception_4b_double_3x3_reduce_bn",
    ),
    (
        "inception_4b_relu_double_3x3_reduce", "relu", (), ("inception_4b_double_3x3_reduce_bn",),
        "inception_4b_double_3x3_reduce_bn",
    ),
    (
        "inception_4b_double_3x3_1", "conv", (128, (3, 3), (1, 1), (1, 1)),
        ("inception_4b_double_3x3_reduce_bn",), "inception_4b_double_3x3_1",
    ),
    (
        "inception_4b_double_3x3_1_bn", "bn", (), ("inception_4b_double_3x3_1",),
        "inception_4b_double_3x3_1_bn",
    ),
    (
        "inception_4b_relu_double_3x3_1", "relu", (), ("inception_4b_double_3x3_1_bn",),
        "inception_4b_double_3x3_1_bn",
    ),
    (
        "inception_4b_double_3x3_2", "conv", (128, (3, 3), (1, 1), (1, 1)), ("inception_4b_double_3x3_1_bn",),
        "inception_4b_double_3x3_2",
    ),
    (
        "inception_4b_double_3x3_2_bn", "bn", (), ("inception_4b_double_3x3_2",),
        "inception_4b_double_3x3_2_bn",
    ),
    (
        "inception_4b_relu_double_3x3_2", "relu", (), ("inception_4b_double_3x3_2_bn",),
        "inception_4b_double_3x3_2_bn",
    ),
    ("inception_4b_pool", "avg_pool", (3, 1, 1), ("inception_4a_output",), "inception_4b_pool"),
    (
        "inception_4b_pool_proj", "conv", (128, (1, 1), (1, 1), (0, 0)), ("inception_4b_pool",),
        "inception_4b_pool_proj",
    ),
    ("inception_4b_pool_proj_bn", "bn", (), ("inception_4b_pool_proj",), "inception_4b_pool_proj_bn"),
    ("inception_4b_relu_pool_proj", "relu", (), ("inception_4b_pool_proj_bn",), "inception_4b_pool_proj_bn"),
    (
        "inception_4b_output", "concat", (576,),
        (
            "inception_4b_1x1_bn",
            "inception_4b_3x3_bn",
            "inception_4b_double_3x3_2_bn",
            "inception_4b_pool_proj_bn",
        ),
        "inception_4b_output",
    ),
    ("inception_4c_1x1", "conv", (160, (1, 1), (1, 1), (0, 0)), ("inception_4b_output",), "inception_4c_1x1"),
    ("gsf_inception_4c_1x1", "temporal", (160,), ("inception_4c_1x1",), "gsf_inception_4c_1x1"),
    ("inception_4c_1x1_bn", "bn", (), ("gsf_inception_4c_1x1",), "inception_4c_1x1_bn"),
    ("inception_4c_relu_1x1", "relu", (), ("inception_4c_1x1_bn",), "inception_4c_1x1_bn"),
    (
        "inception_4c_3x3_reduce", "conv", (128, (1, 1), (1, 1), (0, 0)), ("inception_4b_output",),
        "inception_4c_3x3_reduce",
    ),
    ("inception_4c_3x3_reduce_bn", "bn", (), ("inception_4c_3x3_reduce",), "inception_4c_3x3_reduce_bn"),
    (
        "inception_4c_relu_3x3_reduce", "relu", (), ("inception_4c_3x3_reduce_bn",),
        "inception_4c_3x3_reduce_bn",
    ),
    (
        "inception_4c_3x3", "conv", (160, (3, 3), (1, 1), (1, 1)), ("inception_4c_3x3_reduce_bn",),
        "inception_4c_3x3",
    ),
    ("inception_4c_3x3_bn", "bn", (), ("inception_4c_3x3",), "inception_4c_3x3_bn"),
    ("inception_4c_relu_3x3", "relu", (), ("inception_4c_3x3_bn",), "inception_4c_3x3_bn"),
    (
        "inception_4c_double_3x3_reduce", "conv", (128, (1, 1), (1, 1), (0, 0)), ("inception_4b_output",),
        "inception_4c_double_3x3_reduce",
    ),
    (
        "inception_4c_double_3x3_reduce_bn", "bn", (), ("inception_4c_double_3x3_reduce",),
        "inception_4c_double_3x3_reduce_bn",
    ),
    (
        "inception_4c_relu_double_3x3_reduce", "relu", (), ("inception_4c_double_3x3_reduce_bn",),
        "inception_4c_double_3x3_reduce_bn",
    ),
    (
        "inception_4c_double_3x3_1", "conv", (160, (3, 3), (1, 1), (1, 1)),
        ("inception_4c_double_3x3_reduce_bn",), "inception_4c_double_3x3_1",
    ),
    (
        "inception_4c_double_3x3_1_bn", "bn", (), ("inception_4c_double_3x3_1",),
        "inception_4c_double_3x3_1_bn",
    ),
    (
        "inception_4c_relu_double_3x3_1", "relu", (), ("inception_4c_double_3x3_1_bn",),
        "inception_4c_double_3x3_1_bn",
    ),
    (
        "inception_4c_double_3x3_2", "conv", (160, (3, 3), (1, 1), (1, 1)), ("inception_4c_double_3x3_1_bn",),
        "inception_4c_double_3x3_2",
    ),
    (
        "inception_4c_double_3x3_2_bn", "bn", (), ("inception_4c_double_3x3_2",),
        "inception_4c_double_3x3_2_bn",
    ),
    (
        "inception_4c_relu_double_3x3_2", "relu", (), ("inception_4c_double_3x3_2_bn",),
        "inception_4c_double_3x3_2_bn",
    ),
    ("inception_4c_pool", "avg_pool", (3, 1, 1), ("inception_4b_output",), "inception_4c_pool"),
    (
        "inception_4c_pool_proj", "conv", (128, (1, 1), (1, 1), (0, 0)), ("inception_4c_pool",),
        "inception_4c_pool_proj",
    ),
    ("inception_4c_pool_proj_bn", "bn", (), ("inception_4c_pool_proj",), "inception_4c_pool_proj_bn"),
    ("inception_4c_relu_pool_proj", "relu", (), ("inception_4c_pool_proj_bn",), "inception_4c_pool_proj_bn"),
    (
        "inception_4c_output", "concat", (608,),
        (
            "inception_4c_1x1_bn",
            "inception_4c_3x3_bn",
            "inception_4c_double_3x3_2_bn",
            "inception_4c_pool_proj_bn",
        ),
        "inception_4c_output",
    ),
    ("inception_4d_1x1", "conv", (96, (1, 1), (1, 1), (0, 0)), ("inception_4c_output",), "inception_4d_1x1"),
    ("gsf_inception_4d_1x1", "temporal", (96,), ("inception_4d_1x1",), "gsf_inception_4d_1x1c"),
    ("inception_4d_1x1_bn", "bn", (), ("gsf_inception_4d_1x1c",), "inception_4d_1x1_bn"),
    ("inception_4d_relu_1x1", "relu", (), ("inception_4d_1x1_bn",), "inception_4d_1x1_bn"),
    (
        "inception_4d_3x3_reduce", "conv", (128, (1, 1), (1, 1), (0, 0)), ("inception_4c_output",),
        "inception_4d_3x3_reduce",
    ),
    ("inception_4d_3x3_reduce_bn", "bn", (), ("inception_4d_3x3_reduce",), "inception_4d_3x3_reduce_bn"),
    (
        "inception_4d_relu_3x3_reduce", "relu", (), ("inception_4d_3x3_reduce_bn",),
        "inception_4d_3x3_reduce_bn",
    ),
    (
        "inception_4d_3x3", "conv", (192, (3, 3), (1, 1), (1, 1)), ("inception_4d_3x3_reduce_bn",),
        "inception_4d_3x3",
    ),
    ("inception_4d_3x3_bn", "bn", (), ("inception_4d_3x3",), "inception_4d_3x3_bn"),
    ("inception_4d_relu_3x3", "relu", (), ("inception_4d_3x3_bn",), "inception_4d_3x3_bn"),
    (
        "inception_4d_double_3x3_reduce", "conv", (160, (1, 1), (1, 1), (0, 0)), ("inception_4c_output",),
        "inception_4d_double_3x3_reduce",
    ),
    (
        "inception_4d_double_3x3_reduce_bn", "bn", (), ("inception_4d_double_3x3_reduce",),
        "inception_4d_double_3x3_reduce_bn",
    ),
    (
        "inception_4d_relu_double_3x3_reduce", "relu", (), ("inception_4d_double_3x3_reduce_bn",),
        "inception_4d_double_3x3_reduce_bn",
    ),
    (
        "inception_4d_double_3x3_1", "conv", (192, (3, 3), (1, 1), (1, 1)),
        ("inception_4d_double_3x3_reduce_bn",), "inception_4d_double_3x3_1",
    ),
    (
        "inception_4d_double_3x3_1_bn", "bn", (), ("inception_4d_double_3x3_1",),
        "inception_4d_double_3x3_1_bn",
    ),
    (
        "inception_4d_relu_double_3x3_1", "relu", (), ("inception_4d_double_3x3_1_bn",),
        "inception_4d_double_3x3_1_bn",
    ),
    (
        "inception_4d_double_3x3_2", "conv", (192, (3, 3), (1, 1), (1, 1)), ("inception_4d_double_3x3_1_bn",),
        "inception_4d_double_3x3_2",
    ),
    (
        "inception_4d_double_3x3_2_bn", "bn", (), ("inception_4d_double_3x3_2",),
        "inception_4d_double_3x3_2_bn",
    ),
    (
        "inception_4d_relu_double_3x3_2", "relu", (), ("inception_4d_double_3x3_2_bn",),
        "inception_4d_double_3x3_2_bn",
    ),
    ("inception_4d_pool", "avg_pool", (3, 1, 1), ("inception_4c_output",), "inception_4d_pool"),
    (
        "inception_4d_pool_proj", "conv", (128, (1, 1), (1, 1), (0, 0)), ("inception_4d_pool",),
        "inception_4d_pool_proj",
    ),
    ("inception_4d_pool_proj_bn", "bn", (), ("inception_4d_pool_proj",), "inception_4d_pool_proj_bn"),
    ("inception_4d_relu_pool_proj", "relu", (), ("inception_4d_pool_proj_bn",), "inception_4d_pool_proj_bn"),
    (
        "inception_4d_output", "concat", (608,),
        (
            "inception_4d_1x1_bn",
            "inception_4d_3x3_bn",
            "inception_4d_double_3x3_2_bn",
            "inception_4d_pool_proj_bn",
        ),
        "inception_4d_output",
    ),
    (
        "inception_4e_3x3_reduce", "conv", (128, (1, 1), (1, 1), (0, 0)), ("inception_4d_output",),
        "inception_4e_3x3_reduce",
    ),
    (
        "gsf_inception_4e_3x3_reduce", "temporal", (128,), ("inception_4e_3x3_reduce",),
        "gsf_inception_4e_3x3_reduce",
    ),
    ("inception_4e_3x3_reduce_bn", "bn", (), ("gsf_inception_4e_3x3_reduce",), "inception_4e_3x3_reduce_bn"),
    (
        "inception_4e_relu_3x3_reduce", "relu", (), ("inception_4e_3x3_reduce_bn",),
        "inception_4e_3x3_reduce_bn",
    ),
    (
        "inception_4e_3x3", "conv", (192, (3, 3), (2, 2), (1, 1)), ("inception_4e_3x3_reduce_bn",),
        "inception_4e_3x3",
    ),
    ("inception_4e_3x3_bn", "bn", (), ("inception_4e_3x3",), "inception_4e_3x3_bn"),
    ("inception_4e_relu_3x3", "relu", (), ("inception_4e_3x3_bn",), "inception_4e_3x3_bn"),
    (
        "inception_4e_double_3x3_reduce", "conv", (192, (1, 1), (1, 1), (0, 0)), ("inception_4d_output",),
        "inception_4e_double_3x3_reduce",
    ),
    (
        "inception_4e_double_3x3_reduce_bn", "bn", (), ("inception_4e_double_3x3_reduce",),
        "inception_4e_double_3x3_reduce_bn",
    ),
    (
        "inception_4e_relu_double_3x3_reduce", "relu", (), ("inception_4e_double_3x3_reduce_bn",),
        "inception_4e_double_3x3_reduce_bn",
    ),
    (
        "inception_4e_double_3x3_1", "conv", (256, (3, 3), (1, 1), (1, 1)),
        ("inception_4e_double_3x3_reduce_bn",), "inception_4e_double_3x3_1",
    ),
    (
        "inception_4e_double_3x3_1_bn", "bn", (), ("inception_4e_double_3x3_1",),
        "inception_4e_double_3x3_1_bn",
    ),
    (
        "inception_4e_relu_double_3x3_1", "relu", (), ("inception_4e_double_3x3_1_bn",),
        "inception_4e_double_3x3_1_bn",
    ),
    (
        "inception_4e_double_3x3_2", "conv", (256, (3, 3), (2, 2), (1, 1)), ("inception_4e_double_3x3_1_bn",),
        "inception_4e_double_3x3_2",
    ),
    (
        "inception_4e_double_3x3_2_bn", "bn", (), ("inception_4e_double_3x3_2",),
        "inception_4e_double_3x3_2_bn",
    ),
    (
        "inception_4e_relu_double_3x3_2", "relu", (), ("inception_4e_double_3x3_2_bn",),
        "inception_4e_double_3x3_2_bn",
    ),
    ("inception_4e_pool", "max_pool", (3, 2, 0), ("inception_4d_output",), "inception_4e_pool"),
    (
        "inception_4e_output", "concat", (1056,),
        ("inception_4e_3x3_bn", "inception_4e_double_3x3_2_bn", "inception_4e_pool"), "inception_4e_output",
    ),
    ("inception_5a_1x1", "conv", (352, (1, 1), (1, 1), (0, 0)), ("inception_4e_output",), "inception_5a_1x1"),
    ("gsf_inception_5a_1x1", "temporal", (352,), ("inception_5a_1x1",), "gsf_inception_5a_1x1"),
    ("inception_5a_1x1_bn", "bn", (), ("gsf_inception_5a_1x1",), "inception_5a_1x1_bn"),
    ("inception_5a_relu_1x1", "relu", (), ("inception_5a_1x1_bn",), "inception_5a_1x1_bn"),
    (
        "inception_5a_3x3_reduce", "conv", (192, (1, 1), (1, 1), (0, 0)), ("inception_4e_output",),
        "inception_5a_3x3_reduce",
    ),
    ("inception_5a_3x3_reduce_bn", "bn", (), ("inception_5a_3x3_reduce",), "inception_5a_3x3_reduce_bn"),
    (
        "inception_5a_relu_3x3_reduce", "relu", (), ("inception_5a_3x3_reduce_bn",),
        "inception_5a_3x3_reduce_bn",
    ),
    (
        "inception_5a_3x3", "conv", (320, (3, 3), (1, 1), (1, 1)), ("inception_5a_3x3_reduce_bn",),
        "inception_5a_3x3",
    ),
    ("inception_5a_3x3_bn", "bn", (), ("inception_5a_3x3",), "inception_5a_3x3_bn"),
    ("inception_5a_relu_3x3", "relu", (), ("inception_5a_3x3_bn",), "inception_5a_3x3_bn"),
    (
        "inception_5a_double_3x3_reduce", "conv", (160, (1, 1), (1, 1), (0, 0)), ("inception_4e_output",),
        "inception_5a_double_3x3_reduce",
    ),
    (
        "inception_5a_double_3x3_reduce_bn", "bn", (), ("inception_5a_double_3x3_reduce",),
        "inception_5a_double_3x3_reduce_bn",
    ),
    (
        "inception_5a_relu_double_3x3_reduce", "relu", (), ("inception_5a_double_3x3_reduce_bn",),
        "inception_5a_double_3x3_reduce_bn",
    ),
    (
        "inception_5a_double_3x3_1", "conv", (224, (3, 3), (1, 1), (1, 1)),
        ("inception_5a_double_3x3_reduce_bn",), "inception_5a_double_3x3_1",
    ),
    (
        "inception_5a_double_3x3_1_bn", "bn", (), ("inception_5a_double_3x3_1",),
        "inception_5a_double_3x3_1_bn",
    ),
    (
        "inception_5a_relu_double_3x3_1", "relu", (), ("inception_5a_double_3x3_1_bn",),
        "inception_5a_double_3x3_1_bn",
    ),
    (
        "inception_5a_double_3x3_2", "conv", (224, (3, 3), (1, 1), (1, 1)), ("inception_5a_double_3x3_1_bn",),
        "inception_5a_double_3x3_2",
    ),
    (
        "inception_5a_double_3x3_2_bn", "bn", (), ("inception_5a_double_3x3_2",),
        "inception_5a_double_3x3_2_bn",
    ),
    (
        "inception_5a_relu_double_3x3_2", "relu", (), ("inception_5a_double_3x3_2_bn",),
        "inception_5a_double_3x3_2_bn",
    ),
    ("inception_5a_pool", "avg_pool", (3, 1, 1), ("inception_4e_output",), "inception_5a_pool"),
    (
        "inception_5a_pool_proj", "conv", (128, (1, 1), (1, 1), (0, 0)), ("inception_5a_pool",),
        "inception_5a_pool_proj",
    ),
    ("inception_5a_pool_proj_bn", "bn", (), ("inception_5a_pool_proj",), "inception_5a_pool_proj_bn"),
    ("inception_5a_relu_pool_proj", "relu", (), ("inception_5a_pool_proj_bn",), "inception_5a_pool_proj_bn"),
    (
        "inception_5a_output", "concat", (1024,),
        (
            "inception_5a_1x1_bn",
            "inception_5a_3x3_bn",
            "inception_5a_double_3x3_2_bn",
            "inception_5a_pool_proj_bn",
        ),
        "inception_5a_output",
    ),
    ("inception_5b_1x1", "conv", (352, (1, 1), (1, 1), (0, 0)), ("inception_5a_output",), "inception_5b_1x1"),
    ("gsf_inception_5b_1x1", "temporal", (352,), ("inception_5b_1x1",), "gsf_inception_5b_1x1"),
    ("inception_5b_1x1_bn", "bn", (), ("gsf_inception_5b_1x1",), "inception_5b_1x1_bn"),
    ("inception_5b_relu_1x1", "relu", (), ("inception_5b_1x1_bn",), "inception_5b_1x1_bn"),
    (
        "inception_5b_3x3_reduce", "conv", (192, (1, 1), (1, 1), (0, 0)), ("inception_5a_output",),
        "inception_5b_3x3_reduce",
    ),
    ("inception_5b_3x3_reduce_bn", "bn", (), ("inception_5b_3x3_reduce",), "inception_5b_3x3_reduce_bn"),
    (
        "inception_5b_relu_3x3_reduce", "relu", (), ("inception_5b_3x3_reduce_bn",),
        "inception_5b_3x3_reduce_bn",
    ),
    (
        "inception_5b_3x3", "conv", (320, (3, 3), (1, 1), (1, 1)), ("inception_5b_3x3_reduce_bn",),
        "inception_5b_3x3",
    ),
    ("inception_5b_3x3_bn", "bn", (), ("inception_5b_3x3",), "inception_5b_3x3_bn"),
    ("inception_5b_relu_3x3", "relu", (), ("inception_5b_3x3_bn",), "inception_5b_3x3_bn"),
    (
        "inception_5b_double_3x3_reduce", "conv", (192, (1, 1), (1, 1), (0, 0)), ("inception_5a_output",),
        "inception_5b_double_3x3_reduce",
    ),
    (
        "inception_5b_double_3x3_reduce_bn", "bn", (), ("inception_5b_double_3x3_reduce",),
        "inception_5b_double_3x3_reduce_bn",
    ),
    (
        "inception_5b_relu_double_3x3_reduce", "relu", (), ("inception_5b_double_3x3_reduce_bn",),
        "inception_5b_double_3x3_reduce_bn",
    ),
    (
        "inception_5b_double_3x3_1", "conv", (224, (3, 3), (1, 1), (1, 1)),
        ("inception_5b_double_3x3_reduce_bn",), "inception_5b_double_3x3_1",
    ),
    (
        "inception_5b_double_3x3_1_bn", "bn", (), ("inception_5b_double_3x3_1",),
        "inception_5b_double_3x3_1_bn",
    ),
    (
        "inception_5b_relu_double_3x3_1", "relu", (), ("inception_5b_double_3x3_1_bn",),
        "inception_5b_double_3x3_1_bn",
    ),
    (
        "inception_5b_double_3x3_2", "conv", (224, (3, 3), (1, 1), (1, 1)), ("inception_5b_double_3x3_1_bn",),
        "inception_5b_double_3x3_2",
    ),
    (
        "inception_5b_double_3x3_2_bn", "bn", (), ("inception_5b_double_3x3_2",),
        "inception_5b_double_3x3_2_bn",
    ),
    (
        "inception_5b_relu_double_3x3_2", "relu", (), ("inception_5b_double_3x3_2_bn",),
        "inception_5b_double_3x3_2_bn",
    ),
    ("inception_5b_pool", "max_pool", (3, 1, 1), ("inception_5a_output",), "inception_5b_pool"),
    (
        "inception_5b_pool_proj", "conv", (128, (1, 1), (1, 1), (0, 0)), ("inception_5b_pool",),
        "inception_5b_pool_proj",
    ),
    ("inception_5b_pool_proj_bn", "bn", (), ("inception_5b_pool_proj",), "inception_5b_pool_proj_bn"),
    ("inception_5b_relu_pool_proj", "relu", (), ("inception_5b_pool_proj_bn",), "inception_5b_pool_proj_bn"),
    (
        "inception_5b_output", "concat", (1024,),
        (
            "inception_5b_1x1_bn",
            "inception_5b_3x3_bn",
            "inception_5b_double_3x3_2_bn",
            "inception_5b_pool_proj_bn",
        ),
        "inception_5b_output",
    ),
    ("global_pool", "global_avg_pool", (), ("inception_5b_output",), "global_pool"),
    ("fc", "linear", (1000,), ("global_pool",), "fc_action"),
)

# "every_branch" placement: the first conv of every branch of every inception block (the conv reading
# the block input, or reading a pool of the block input), 4 per block and 2 per reduction block.
EVERY_BRANCH = (
    "inception_3a_1x1",
    "inception_3a_3x3_reduce",
    "inception_3a_double_3x3_reduce",
    "inception_3a_pool_proj",
    "inception_3b_1x1",
    "inception_3b_3x3_reduce",
    "inception_3b_double_3x3_reduce",
    "inception_3b_pool_proj",
    "inception_3c_3x3_reduce",
    "inception_3c_double_3x3_reduce",
    "inception_4a_1x1",
    "inception_4a_3x3_reduce",
    "inception_4a_double_3x3_reduce",
    "inception_4a_pool_proj",
    "inception_4b_1x1",
    "inception_4b_3x3_reduce",
    "inception_4b_double_3x3_reduce",
    "inception_4b_pool_proj",
    "inception_4c_1x1",
    "inception_4c_3x3_reduce",
    "inception_4c_double_3x3_reduce",
    "inception_4c_pool_proj",
    "inception_4d_1x1",
    "inception_4d_3x3_reduce",
    "inception_4d_double_3x3_reduce",
    "inception_4d_pool_proj",
    "inception_4e_3x3_reduce",
    "inception_4e_double_3x3_reduce",
    "inception_5a_1x1",
    "inception_5a_3x3_reduce",
    "inception_5a_double_3x3_reduce",
    "inception_5a_pool_proj",
    "inception_5b_1x1",
    "inception_5b_3x3_reduce",
    "inception_5b_double_3x3_reduce",
    "inception_5b_pool_proj",
)
