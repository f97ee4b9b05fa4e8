"""The GPUs of a run: the one NVML module, which GPUs are measured and who else uses them, and the window edges."""
