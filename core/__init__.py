"""senclr: paired Sentinel-1 / Sentinel-2 training data and multimodal contrastive encoders.

The core package holds the contracts every stage shares (band registry, PatchPair, raw archive,
training-record schema, manifest, storage) and the command-line front door. It imports no stage.
"""

__version__ = "0.1.0"
