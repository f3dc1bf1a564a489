"""Use a trained model: classify video files (:mod:`gsf.inference.predict`) and export a checkpoint to ONNX,
TorchScript or a torch.export ExportedProgram (:mod:`gsf.inference.export`).

Importing this package binds no names and loads neither onnxruntime nor MLflow; import the modules.
"""
