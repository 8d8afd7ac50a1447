"""A list of work items as a Beam PCollection that stays within Dataflow's job-graph size.

``beam.Create`` embeds its items in the job graph, which Dataflow caps; a long list is written to a
file (JSON lines) and read back inside the pipeline instead. Beam is imported when used.
"""

from __future__ import annotations

from typing import Callable

from senclr import storage


def listed(items: list, listing_uri: str, limit: int, encode: Callable[[object], str], decode: Callable[[str], object]):
    """A PTransform from the pipeline's start to ``items``: in the graph up to ``limit`` items,
    else through ``listing_uri`` (the caller removes it when it is no longer needed)."""
    import apache_beam as beam

    class Listed(beam.PTransform):
        def expand(self, pbegin):
            if len(items) <= limit:
                return pbegin | "Create" >> beam.Create(items)
            storage.write_text(listing_uri, "".join(encode(i) + "\n" for i in items))
            return (pbegin | "ReadListing" >> beam.io.ReadFromText(listing_uri)
                    | "Parse" >> beam.Map(decode) | "Spread" >> beam.Reshuffle())

    return Listed()
