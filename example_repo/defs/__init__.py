"""Component definitions of the example project (``dg list defs`` lists what they build)."""
