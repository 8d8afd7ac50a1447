"""The Earth Engine source: session, scene queries, pairing, grid, plan, batch and high-volume export, ledger, doctor."""
