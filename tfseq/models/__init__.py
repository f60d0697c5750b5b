"""The model factory: a recurrent backbone and a head, from Keras layers only."""
