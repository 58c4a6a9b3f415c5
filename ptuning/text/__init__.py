"""Text in: GLUE and users' tables, tokenizer, batches, and fetching GLUE when it is missing."""
