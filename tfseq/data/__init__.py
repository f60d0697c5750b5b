"""Input pipelines: sources (Gutenberg books, IMDb reviews, tables, class folders, TFDS), splits, text -> ids,
batches, and vocabularies."""
