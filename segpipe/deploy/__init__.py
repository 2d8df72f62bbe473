"""Deployment artefacts for the places users run a segpipe model.

* :mod:`segpipe.deploy.model`: what a model file (``.onnx``, ``.engine``) tells a deployment: its
  input and output tensors, batch, classes (one reader for every target);
* :mod:`segpipe.deploy.triton`: a Triton Inference Server model repository (``config.pbtxt``
  built and checked with Triton's own ``ModelConfig`` protobuf from ``tritonclient``);
* :mod:`segpipe.deploy.deepstream`: a DeepStream ``nvinfer`` configuration (semantic
  segmentation, ``network-type=2``), its labels file and a pipeline that runs it;
* :mod:`segpipe.deploy.serve` (the batched model), :mod:`~segpipe.deploy.kserve_http`,
  :mod:`~segpipe.deploy.kserve_grpc` and :mod:`~segpipe.deploy.run_server`: ``segpipe serve``, the
  KServe v2 / Triton protocol in front of any segpipe model file, or NVIDIA Triton via PyTriton.

Nothing here imports torch.
"""
