"""Files in and out: saving and loading modules (safetensors + JSON), Keras weight interop, ONNX
export, and atomic writes."""
