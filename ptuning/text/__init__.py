"""Text in, token ids out: the tokenizer (templates, special tokens), table readers, batches, and
fetching GLUE when it is missing."""
