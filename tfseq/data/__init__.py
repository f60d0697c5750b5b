"""Input pipelines: text files and vocabularies, Gutenberg books for char-LMs, IMDb reviews for sentiment."""
