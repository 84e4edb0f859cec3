"""Compiled CPU kernels behind the modules' `backend="fused"`: the GRU and GRU-D scans, their
activations, torch's BLAS called from compiled code, and the split of rows across threads."""
