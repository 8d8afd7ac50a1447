"""``--method simclr``: the augmentation baseline, one encoder and two augmented views.

The two views of a patch (``augment.views_dataset``) are the positive pair; the other 2N - 2
views of the global batch are the negatives (SimCLR, Chen et al. 2020). The encoder sees one
modality: S1, S2 or both stacked as channels (``s1s2``). Inputs are dicts {"view1", "view2"}.
"""

from __future__ import annotations

from senclr.models.contrastive import ContrastiveModel
from senclr.models.heads import projection_head

VIEWS = ("view1", "view2")


class SimCLR(ContrastiveModel):
    """One encoder and one projection head shared by both views; NT-Xent over 2N views."""

    input_keys = VIEWS

    def __init__(self, encoder, modality: str, proj_dim: int = 64, temperature: float = 0.1,
                 hidden_dim: int | None = None, head_layers: int = 2, **kwargs):
        super().__init__(temperature=temperature, intra_negatives=True, **kwargs)
        self.encoder = encoder
        self.modality = modality
        hidden = hidden_dim or int(encoder.output.shape[-1])
        self.head = projection_head(hidden, proj_dim, "head", head_layers)

    @property
    def encoders(self) -> dict:
        return {self.modality: self.encoder}

    def call(self, inputs, training=False):
        """Projected embeddings of both views {"view1": [B, proj_dim], "view2": [B, proj_dim]}."""
        return {v: self.head(self.encoder(inputs[v], training=training), training=training) for v in VIEWS}

    def embed(self, inputs, training):
        z = self(inputs, training=training)
        return z["view1"], z["view2"]
