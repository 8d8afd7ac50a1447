"""LARS: Layer-wise Adaptive Rate Scaling (You, Gitman & Ginsburg, 2017), as SimCLR uses it.

LARS is SGD with momentum whose step for each variable ("layer") is rescaled by a trust ratio
``trust_coefficient * ||w|| / ||g + weight_decay * w||``. Every layer then moves by roughly the
same fraction of its own norm, which keeps very large batches (SimCLR's 4096+) stable where
plain SGD or Adam diverge or need a long warm-up.

Why a port: SimCLR's tf2 LARS subclasses the legacy ``tf.keras`` optimizer (``_resource_apply_dense``
and friends), which Keras 3 no longer has. This module re-implements the same update on the
Keras 3 ``Optimizer`` API (``build`` / ``update_step``) with ``keras.ops`` only, so it runs on
any backend, with learning-rate schedules, inside ``model.fit`` and under ``tf.distribute``.

Weight decay is L2 added to the gradient (coupled, as in SimCLR), *not* Keras' decoupled
AdamW-style decay, so it is kept out of the base class (whose ``weight_decay`` stays ``None``).

Exclusion rule: variables of rank <= 1 (batch-norm gamma/beta, biases) and any variable whose
path or name contains one of ``exclude_from_adaptation`` get neither weight decay nor the trust
ratio, i.e. plain momentum SGD at the scheduled rate. Their norms say nothing about a layer's
scale (a bias may start at 0, a BN gamma at 1), so a trust ratio would freeze or blow them up,
and decaying them only shrinks the network's normalisation, as SimCLR and the LARS paper note.
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="senclr")
class LARS(keras.optimizers.Optimizer):
    """Momentum SGD with a per-variable trust ratio and coupled L2 weight decay."""

    def __init__(
        self,
        learning_rate=0.1,
        momentum=0.9,
        weight_decay=0.0,
        trust_coefficient=0.001,
        nesterov=False,
        exclude_from_adaptation=None,
        name="lars",
        **kwargs,
    ):
        # weight_decay is deliberately not forwarded: the base class would add decoupled decay.
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        if not 0.0 <= float(momentum) <= 1.0:
            raise ValueError(f"momentum must be in [0, 1], got {momentum}")
        if float(weight_decay) < 0 or float(trust_coefficient) <= 0:
            raise ValueError("weight_decay must be >= 0 and trust_coefficient > 0, got "
                             f"{weight_decay} and {trust_coefficient}")
        self.momentum = float(momentum)
        self.lars_weight_decay = float(weight_decay)
        self.trust_coefficient = float(trust_coefficient)
        self.nesterov = bool(nesterov)
        self.exclude_from_adaptation = list(exclude_from_adaptation or [])

    def _excluded(self, variable) -> bool:
        if len(variable.shape) <= 1:
            return True
        names = (getattr(variable, "path", None) or "", variable.name or "")
        return any(s in n for s in self.exclude_from_adaptation for n in names)

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self.momentums = [self.add_variable_from_reference(v, "momentum") for v in variables]
        # Decided once, on the Keras variables: update_step receives the backend variable (under
        # MirroredStrategy a per-replica copy, with its own name), so it looks the answer up by index.
        self._adapt = [not self._excluded(v) for v in variables]

    def update_step(self, gradient, variable, learning_rate):
        index = self._get_variable_index(variable)
        lr = ops.cast(learning_rate, variable.dtype)
        g = ops.cast(gradient, variable.dtype)
        if self._adapt[index]:
            w = ops.convert_to_tensor(variable)
            g = g + ops.cast(self.lars_weight_decay, variable.dtype) * w
            w_norm = ops.sqrt(ops.sum(ops.square(w)))
            g_norm = ops.sqrt(ops.sum(ops.square(g)))
            ok = ops.logical_and(w_norm > 0, g_norm > 0)
            # The inner where keeps the untaken branch finite (no 0/0 in the graph).
            ratio = self.trust_coefficient * w_norm / ops.where(g_norm > 0, g_norm, 1.0)
            lr = lr * ops.where(ok, ratio, ops.ones_like(ratio))
        step = lr * g
        momentum = ops.cast(self.momentum, variable.dtype)
        # The new buffer as a tensor, so the update never depends on when `m` is re-read.
        v = momentum * self.momentums[index] + step
        self.assign(self.momentums[index], v)
        self.assign_sub(variable, momentum * v + step if self.nesterov else v)

    def get_config(self):
        config = super().get_config()
        config.update(
            weight_decay=self.lars_weight_decay,
            momentum=self.momentum,
            trust_coefficient=self.trust_coefficient,
            nesterov=self.nesterov,
            exclude_from_adaptation=list(self.exclude_from_adaptation),
        )
        return config
