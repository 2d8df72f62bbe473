"""Export stages: ONNX (``segpipe.export.onnx``) and TensorRT engines (``segpipe.export.tensorrt``)."""
