"""Task families: what each task reads, encodes and scores."""
