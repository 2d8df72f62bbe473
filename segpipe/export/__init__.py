"""Export stage: ONNX (``segpipe.export.onnx``); TensorRT engines live in ``segpipe.tensorrt``."""
