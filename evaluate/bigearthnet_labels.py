"""BigEarthNet nomenclatures: v1's 43 CORINE level-3 labels, the 19-class one, and 43 -> 19.

Sumbul et al. (2020, BigEarthNet-MM) found several CLC level-3 classes that a single 1.2 km
Sentinel patch cannot show (roads, ports, dump sites, bare rock, burnt areas, ...) and merged or
dropped classes into 19. The BigEarthNet v2 release (reBEN) labels patches with the 19 names
directly; v1 patches are labelled with the 43 names and are mapped here. The table is the one
published with the 19-class models (``label_indices.json``) and reused by torchgeo and
bigearthnet_common: 32 of the 43 map to a class, 11 map to nothing and are dropped.
Names are data: they match the published strings byte for byte.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from senclr.errors import InputError

NUM_CLASSES = 19

# The published order (label_indices.json "BigEarthNet-19_labels"); index = position.
CLASS_NAMES_19: tuple[str, ...] = (
    "Urban fabric",
    "Industrial or commercial units",
    "Arable land",
    "Permanent crops",
    "Pastures",
    "Complex cultivation patterns",
    "Land principally occupied by agriculture, with significant areas of natural vegetation",
    "Agro-forestry areas",
    "Broad-leaved forest",
    "Coniferous forest",
    "Mixed forest",
    "Natural grassland and sparsely vegetated areas",
    "Moors, heathland and sclerophyllous vegetation",
    "Transitional woodland, shrub",
    "Beaches, dunes, sands",
    "Inland wetlands",
    "Coastal wetlands",
    "Inland waters",
    "Marine waters",
)

# v1 label (CLC level 3, in CLC code order) -> 19-class name, or None when the class is dropped.
MAP_43_TO_19: dict[str, str | None] = {
    "Continuous urban fabric": "Urban fabric",
    "Discontinuous urban fabric": "Urban fabric",
    "Industrial or commercial units": "Industrial or commercial units",
    "Road and rail networks and associated land": None,
    "Port areas": None,
    "Airports": None,
    "Mineral extraction sites": None,
    "Dump sites": None,
    "Construction sites": None,
    "Green urban areas": None,
    "Sport and leisure facilities": None,
    "Non-irrigated arable land": "Arable land",
    "Permanently irrigated land": "Arable land",
    "Rice fields": "Arable land",
    "Vineyards": "Permanent crops",
    "Fruit trees and berry plantations": "Permanent crops",
    "Olive groves": "Permanent crops",
    "Pastures": "Pastures",
    "Annual crops associated with permanent crops": "Permanent crops",
    "Complex cultivation patterns": "Complex cultivation patterns",
    "Land principally occupied by agriculture, with significant areas of natural vegetation":
        "Land principally occupied by agriculture, with significant areas of natural vegetation",
    "Agro-forestry areas": "Agro-forestry areas",
    "Broad-leaved forest": "Broad-leaved forest",
    "Coniferous forest": "Coniferous forest",
    "Mixed forest": "Mixed forest",
    "Natural grassland": "Natural grassland and sparsely vegetated areas",
    "Moors and heathland": "Moors, heathland and sclerophyllous vegetation",
    "Sclerophyllous vegetation": "Moors, heathland and sclerophyllous vegetation",
    "Transitional woodland/shrub": "Transitional woodland, shrub",
    "Beaches, dunes, sands": "Beaches, dunes, sands",
    "Bare rock": None,
    "Sparsely vegetated areas": "Natural grassland and sparsely vegetated areas",
    "Burnt areas": None,
    "Inland marshes": "Inland wetlands",
    "Peatbogs": "Inland wetlands",
    "Salt marshes": "Coastal wetlands",
    "Salines": "Coastal wetlands",
    "Intertidal flats": None,
    "Water courses": "Inland waters",
    "Water bodies": "Inland waters",
    "Coastal lagoons": "Marine waters",
    "Estuaries": "Marine waters",
    "Sea and ocean": "Marine waters",
}

LABELS_43: tuple[str, ...] = tuple(MAP_43_TO_19)
DROPPED_43: frozenset[str] = frozenset(k for k, v in MAP_43_TO_19.items() if v is None)
_INDEX_19 = {name: i for i, name in enumerate(CLASS_NAMES_19)}


def multi_hot_19(names: Iterable[str], where: str = "") -> np.ndarray:
    """uint8 [19] with a 1 at each named 19-class label; InputError for a name not in it."""
    out = np.zeros(NUM_CLASSES, np.uint8)
    for name in names:
        if name not in _INDEX_19:
            raise InputError(f"{where or 'labels'}: {name!r} is not a BigEarthNet 19-class label "
                             f"(known: {', '.join(CLASS_NAMES_19)})")
        out[_INDEX_19[name]] = 1
    return out


def to_19(names_43: Iterable[str], where: str = "") -> list[str]:
    """The 19-class names of v1 labels (dropped ones left out, duplicates merged, in 19-class order);
    InputError for a name not among the 43."""
    mapped = set()
    for name in names_43:
        if name not in MAP_43_TO_19:
            raise InputError(f"{where or 'labels'}: {name!r} is not one of the 43 BigEarthNet v1 "
                             "(CORINE level-3) labels")
        if MAP_43_TO_19[name] is not None:
            mapped.add(MAP_43_TO_19[name])
    return [n for n in CLASS_NAMES_19 if n in mapped]


def multi_hot_from_43(names_43: Iterable[str], where: str = "") -> np.ndarray:
    """uint8 [19] multi-hot of v1 (43-label) names."""
    return multi_hot_19(to_19(names_43, where), where)
