"""tfseq: recurrent sequence models for text on Keras 3 / TensorFlow.

Character-level language models of a book and sentiment classifiers of IMDb reviews: tf.data pipelines, a model
factory (SimpleRNN / LSTM / GRU, bidirectional, stacked), trainers that resume, a compiled stateful sampler, and
SavedModels that take raw strings. Entry points: `python -m tfseq.train | sample | predict | export`.
"""

__version__ = "0.1.0"
