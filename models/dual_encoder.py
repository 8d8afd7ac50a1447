"""``--method multimodal``: an S1 and an S2 encoder pulled into one embedding space.

The S1 and S2 patches of one place and time are the two views (arXiv 2209.02329): separate
encoders and projection heads (SAR and optical images share no low-level statistics), symmetric
cross-modal NT-Xent. Inputs are dicts {"s1": [B,H,W,n1], "s2": [B,H,W,n2]}.
"""

from __future__ import annotations

from senclr.models.contrastive import ContrastiveModel
from senclr.models.heads import projection_head

SENSORS = ("s1", "s2")


class DualEncoder(ContrastiveModel):
    """Pairs an S1 and an S2 encoder by cross-modal contrast.

    Args:
      s1_encoder, s2_encoder: models mapping each sensor's patches to feature maps.
      proj_dim: size of the embedding the loss compares.
      hidden_dim: width of each head's hidden layers; defaults to the S1 feature channels.
      head_layers: Dense layers per projection head (SimCLR v2 uses 3).
      temperature, intra_negatives: see ``ContrastiveModel``.
    """

    input_keys = SENSORS

    def __init__(self, s1_encoder, s2_encoder, proj_dim: int = 64, temperature: float = 0.1,
                 hidden_dim: int | None = None, head_layers: int = 2, intra_negatives: bool = False, **kwargs):
        super().__init__(temperature=temperature, intra_negatives=intra_negatives, **kwargs)
        self.s1_encoder = s1_encoder
        self.s2_encoder = s2_encoder
        hidden = hidden_dim or int(s1_encoder.output.shape[-1])
        self.s1_head = projection_head(hidden, proj_dim, "s1_head", head_layers)
        self.s2_head = projection_head(hidden, proj_dim, "s2_head", head_layers)

    @property
    def encoders(self) -> dict:
        return {"s1": self.s1_encoder, "s2": self.s2_encoder}

    def call(self, inputs, training=False):
        """Projected embeddings {"s1": [B, proj_dim], "s2": [B, proj_dim]}."""
        z1 = self.s1_head(self.s1_encoder(inputs["s1"], training=training), training=training)
        z2 = self.s2_head(self.s2_encoder(inputs["s2"], training=training), training=training)
        return {"s1": z1, "s2": z2}

    def embed(self, inputs, training):
        z = self(inputs, training=training)
        return z["s1"], z["s2"]
