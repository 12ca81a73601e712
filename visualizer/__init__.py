"""cnn-visualizer: watch a convolutional neural network work, live."""

__version__ = "0.1.0"
