"""Raw CTR formats, synthetic data, streaming preprocessing and the memory-mapped store."""
