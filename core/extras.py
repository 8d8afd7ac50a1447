"""Which install extra each command needs, and the pinned closure of a set of distributions.

``pip install senclr`` is the core (band registry, schema, manifest, storage, the numpy dataset
reader, ``senclr inspect``); TensorFlow, Beam and Earth Engine come with the extras. A command run
without its extra must say which one to install, not show a bare ImportError.
"""

from __future__ import annotations

import importlib.util
from importlib import metadata

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from senclr.errors import InputError

# command -> the extra it needs (None: the core is enough)
COMMAND_EXTRA = {"export": "export", "preprocess": "pipeline", "train": "train", "evaluate": "train",
                 "data": None, "inspect": None, "demo": "all"}  # data: a Cloud Storage copy, core only

# top-level module -> (distribution, the extra that brings it); for the message of a missing module
MODULE_EXTRA = {
    "ee": ("earthengine-api", "export"), "googleapiclient": ("earthengine-api", "export"),
    "pyproj": ("pyproj", "export"), "shapely": ("shapely", "export"), "folium": ("folium", "export"),
    "apache_beam": ("apache-beam", "pipeline"), "rasterio": ("rasterio", "pipeline"),
    "tensorflow": ("tensorflow", "train"), "keras": ("keras", "train"), "tensorboard": ("tensorboard", "train"),
    "matplotlib": ("matplotlib", "train"), "pyarrow": ("pyarrow", "train"),
}


# extra -> the modules whose absence means it is not installed (checked before a command runs)
EXTRA_MODULES = {"export": ("ee", "apache_beam", "shapely", "pyproj", "folium"),
                 "pipeline": ("apache_beam", "rasterio"),
                 "train": ("tensorflow", "keras", "matplotlib", "rasterio", "pyarrow")}
EXTRA_MODULES["all"] = tuple(dict.fromkeys(m for mods in EXTRA_MODULES.values() for m in mods))


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None  # finds, does not import
    except (ImportError, ValueError):
        return False


def require_extra(command: str) -> None:
    """InputError naming the extra to install when ``senclr COMMAND``'s extra is missing."""
    extra = COMMAND_EXTRA.get(command)
    absent = [m for m in EXTRA_MODULES.get(extra, ()) if not _importable(m)]
    if absent:
        raise InputError(_fix(command, MODULE_EXTRA[absent[0]][0], extra))


def missing_extra(command: str, err: ModuleNotFoundError) -> str | None:
    """The one-line fix for ``err`` raised while running ``senclr COMMAND``; None if no extra brings that module."""
    root = (err.name or "").split(".")[0]
    if root not in MODULE_EXTRA:
        return None
    dist, extra_of_module = MODULE_EXTRA[root]
    return _fix(command, dist, COMMAND_EXTRA.get(command) or extra_of_module)


def _fix(command: str, dist: str, extra: str) -> str:
    return (f"senclr {command} needs the '{extra}' extra ({dist} is not installed): "
            f"pip install 'senclr[{extra}]' (or 'senclr[all]' for every command)")


def closure(names, extras: tuple[str, ...] = ()) -> dict[str, str]:
    """Installed distributions ``names`` need, themselves included: {canonical name: version}.

    Walks the installed metadata, so in an environment installed with ``-c constraints.txt`` it is
    what pip resolves for ``names`` under those pins. ``extras`` are the extras asked of ``names``
    (not of their dependencies). A requirement not installed here is left out.
    """
    env = default_environment()
    seen: dict[str, str] = {}
    walked: set[tuple[str, tuple[str, ...]]] = set()
    todo = [(n, tuple(extras)) for n in names]
    while todo:
        name, asked = todo.pop()
        key = canonicalize_name(name)
        if (key, asked) in walked:
            continue
        walked.add((key, asked))
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:  # declared but not installed here: nothing to pin
            continue
        seen[key] = dist.version
        for line in dist.requires or []:
            req = Requirement(line)
            if req.marker is None or any(req.marker.evaluate({**env, "extra": e}) for e in ("", *asked)):
                todo.append((req.name, tuple(req.extras)))
    return seen


def pins(names, exclude: tuple[str, ...] = ()) -> list[str]:
    """``name==version`` of the closure of ``names`` as installed here, less ``exclude`` (and not their own needs)."""
    skip = {canonicalize_name(x) for x in exclude}
    return [f"{k}=={v}" for k, v in sorted(closure(names).items()) if k not in skip]
