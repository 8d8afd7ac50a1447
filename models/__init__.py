"""senclr stage: contrastive pre-training (multimodal and SimCLR) and trained-encoder loading.

``senclr.models.load_encoder(model_dir, "s1")`` returns (encoder, config); it is imported on
first use so that importing the package (the CLI does) loads no TensorFlow.
"""


def __getattr__(name):
    if name == "load_encoder":
        from senclr.models.saved import load_encoder

        return load_encoder
    raise AttributeError(f"module 'senclr.models' has no attribute {name!r}")
