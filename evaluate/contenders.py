"""The encoders an evaluation compares, resolved for one input (S1, S2 or both).

Every table holds the user's models (``NAME=MODEL_DIR``: senclr's multimodal, SimCLR, or any
model trained elsewhere and saved in the same layout) and two baselines of the first model's
architecture: ``random`` (a random initialisation, frozen: what the architecture alone gives)
and ``scratch`` (supervised from scratch: the same network trained end to end on the labels).

A multimodal model evaluated on ``s1s2`` fuses its S1 and S2 encoders late (feature maps
concatenated per level); a SimCLR model trained on stacked S1+S2 uses its one ``s1s2`` encoder.
Encoders are loaded afresh for every run: fine-tuning changes their weights.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from senclr.errors import InputError

INPUTS = ("s1", "s2", "s1s2")
RESERVED = ("random", "scratch")


@dataclass(frozen=True)
class Contender:
    key: str
    label: str
    kind: str  # "pretrained" | "random" | "scratch"
    backbone: str
    parts: tuple[str, ...]  # encoder keys in channel order: ("s1",), ("s1s2",), ("s1", "s2")
    bands: tuple[str, ...]  # input bands in channel order
    statistics: dict = field(default_factory=dict)  # band -> p1/p99/mean/std the model was trained with
    model_dir: str | None = None
    width: int = 32

    @property
    def modes(self) -> tuple[str, ...] | None:
        """The only mode a baseline runs in (None: every requested mode)."""
        return {"random": ("frozen",), "scratch": ("finetune",)}.get(self.kind)

    def encoders(self, seed: int = 0):
        """Fresh encoders for one run, in channel order (baselines initialised with ``seed``)."""
        import keras

        from senclr.models.backbones import build_backbone
        from senclr.models.saved import load_encoder

        if self.kind == "pretrained":
            return [load_encoder(self.model_dir, p)[0] for p in self.parts]
        keras.utils.set_random_seed(seed)
        return [build_backbone(self.backbone, len(_part_bands(p, self.bands, self.parts)), self.width,
                               name=f"{self.key}_{p}") for p in self.parts]


def _part_bands(part: str, bands: tuple[str, ...], parts: tuple[str, ...]) -> tuple[str, ...]:
    """The bands one encoder of ``parts`` reads (S1 bands come first in a stacked input)."""
    if len(parts) == 1:
        return bands
    n_s1 = sum(1 for b in bands if b in ("VV", "VH", "HH", "HV"))
    return bands[:n_s1] if part == "s1" else bands[n_s1:]


def _parts(config: dict, model_dir: str, inputs: str) -> tuple[str, ...]:
    have = config["encoders"]
    if inputs in have:
        return (inputs,)
    if inputs == "s1s2" and {"s1", "s2"} <= set(have):
        return ("s1", "s2")
    raise InputError(f"{model_dir} has encoders {have} ({config['method']}), none of which reads --input {inputs}: "
                     f"evaluate it on {' or '.join(have)}, or train a model on {inputs}")


def describe(config: dict) -> str:
    method = {"multimodal": "multimodal S1/S2 (senclr)", "simclr": "SimCLR, augmentations"}.get(
        config.get("method"), config.get("method"))
    return f"{method}, {config.get('backbone', 'small')}"


def from_model(key: str, model_dir: str, inputs: str) -> Contender:
    """A user model, checked for the input (InputError when it has no encoder for it)."""
    from senclr.models.saved import encoder_bands, load_config

    config = load_config(model_dir)
    parts = _parts(config, model_dir, inputs)
    bands = tuple(b for p in parts for b in encoder_bands(config, p))
    return Contender(key=key, label=f"{key}: {describe(config)}", kind="pretrained", backbone=config["backbone"],
                     parts=parts, bands=bands, statistics=dict(config.get("statistics") or {}),
                     model_dir=model_dir, width=int(config["width"]))


def resolve(models: dict[str, str], inputs: str) -> list[Contender]:
    """The models in order, then the ``random`` and ``scratch`` baselines of the first one's architecture."""
    if inputs not in INPUTS:
        raise InputError(f"unknown --input {inputs!r}: use one of {', '.join(INPUTS)}")
    if not models:
        raise InputError("give at least one --model NAME=MODEL_DIR; the baselines take its architecture and bands")
    taken = [k for k in models if k in RESERVED]
    if taken:
        raise InputError(f"model names {taken} are taken by the baselines; name the models differently")
    out = [from_model(k, d, inputs) for k, d in models.items()]
    first = out[0]
    arch = f"{first.backbone}{'' if first.backbone != 'small' else f' width {first.width}'}"
    for kind, label in (("random", f"random init (frozen), {arch}"), ("scratch", f"supervised from scratch, {arch}")):
        out.append(Contender(key=kind, label=label, kind=kind, backbone=first.backbone, parts=first.parts,
                             bands=first.bands, statistics=first.statistics, width=first.width))
    return out


def parse_models(values) -> dict[str, str]:
    """('mm=DIR', 'DIR2') -> {"mm": DIR, "model2": DIR2}; InputError on a repeated or empty name."""
    out = {}
    for i, v in enumerate(values, 1):
        name, sep, path = v.partition("=")
        name, path = (name.strip(), path.strip()) if sep else (f"model{i}", v)
        if not name or not path or name in out or not name.replace("-", "").replace("_", "").isalnum():
            raise InputError(f"--model {v!r}: give NAME=MODEL_DIR with a new NAME (letters, digits, - and _)")
        out[name] = path
    return out
