"""tfseq: recurrent sequence models for text on Keras 3 / TensorFlow.

Tasks (tfseq/tasks/registry.py): character-level language models of a book, classifiers of any labelled texts, and
IMDb sentiment. tf.data pipelines, a model factory (a SimpleRNN / LSTM / GRU backbone, bidirectional, stacked, and a
head), trainers that resume, a compiled stateful sampler, and SavedModels that take raw strings. Entry points: `python -m tfseq.train | sample | predict | export`.
"""

__version__ = "0.1.0"
