"""The export stage: the Earth Engine source (``earthengine/``) and the synthetic one (``synthetic/``)."""


def preview(*args, **kwargs):
    """``senclr.export.earthengine.preview.preview``: a plan over the real scenes in a geemap.Map (notebooks)."""
    from senclr.export.earthengine.preview import preview as _preview

    return _preview(*args, **kwargs)
