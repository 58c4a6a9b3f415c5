"""Task families: what each task reads, encodes, decodes and scores (one file per family)."""
