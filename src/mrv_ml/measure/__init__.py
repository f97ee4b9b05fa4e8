"""Measuring a run: the CodeCarbon meter, the power series, how each component was measured and how far to trust it, the hardware facts; ``gpu/`` for NVML."""
