"""segpipe: semantic segmentation from labelled images to a TensorRT engine.

The command line (``segpipe train | visualize | evaluate | export-onnx | build-trt | ...``) is a thin
layer over this library. Each stage is a plain function of a frozen options object, for example
``segpipe.training.train(TrainOptions(...))``; stages never call each other behind the scenes.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
