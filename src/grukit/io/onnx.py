"""A grukit GRU as an ONNX graph of the standard `GRU` operator (opset 14), for ONNX Runtime.

ONNX's GRU computes, per direction (its gate order is z, r, h; torch's is r, z, n):

    z = σ(X W_zᵀ + H R_zᵀ + Wb_z + Rb_z),  r = σ(X W_rᵀ + H R_rᵀ + Wb_r + Rb_r)
    h = tanh(X W_hᵀ + r ⊙ (H R_hᵀ + Rb_h) + Wb_h)      linear_before_reset = 1  (reset="after")
    h = tanh(X W_hᵀ + (r ⊙ H) R_hᵀ + Rb_h + Wb_h)      linear_before_reset = 0  (reset="before")
    H' = (1 − z) ⊙ h + z ⊙ H

so both of grukit's reset variants map onto it exactly; the weights are torch's blocks reordered.
One GRU node per layer; a layer's output Y (T, D, B, H) is laid out as (T, B, D·H) for the next.
Graph input "input" (T, B, I) and optional "hx" (L·D, B, H); outputs "output" (T, B, D·H) and
"h_n" (L·D, B, H), as the module's forward without lengths. T and B are dynamic.
"""

from __future__ import annotations

import numpy as np

from grukit.io.gates import reorder_gate_blocks


def _gru_layers(gru, input_name: str, state_name: str):
    """(nodes, initializers, top layer's output (T, B, D·H), per-layer final states) of the GRU stack
    on the time-major graph value `input_name`, its initial state `state_name` (L·D, B, H)."""
    from onnx import helper, numpy_helper

    hidden, directions = gru.hidden_size, gru.num_directions
    dtype = gru.weight_ih_l0.detach().numpy().dtype
    nodes, initializers = [], []
    layer_input = input_name
    for layer in range(gru.num_layers):
        w, r, b = [], [], []
        for direction in range(directions):
            w_ih, w_hh, b_ih, b_hh = (None if t is None else t.detach().numpy()
                                      for t in gru.layer_weights(layer, direction))
            w.append(reorder_gate_blocks(w_ih, "torch", "onnx"))
            r.append(reorder_gate_blocks(w_hh, "torch", "onnx"))
            zeros = np.zeros(3 * hidden, dtype=dtype)
            b.append(np.concatenate([reorder_gate_blocks(zeros if b_ih is None else b_ih, "torch", "onnx"),
                                     reorder_gate_blocks(zeros if b_hh is None else b_hh, "torch", "onnx")]))
        names = [f"W_l{layer}", f"R_l{layer}", f"B_l{layer}"]
        for name, blocks in zip(names, (w, r, b)):
            initializers.append(numpy_helper.from_array(np.stack(blocks).astype(dtype), name))
        start = np.array([layer * directions], dtype=np.int64)
        stop = np.array([(layer + 1) * directions], dtype=np.int64)
        initializers += [numpy_helper.from_array(start, f"h_start_l{layer}"),
                         numpy_helper.from_array(stop, f"h_stop_l{layer}")]
        nodes.append(helper.make_node("Slice", [state_name, f"h_start_l{layer}", f"h_stop_l{layer}"], [f"h0_l{layer}"]))
        nodes.append(helper.make_node(
            "GRU", [layer_input, *names, "", f"h0_l{layer}"], [f"Y_l{layer}", f"h_n_l{layer}"],
            hidden_size=hidden, linear_before_reset=int(gru.reset == "after"),
            direction="bidirectional" if directions == 2 else "forward"))
        # Y (T, D, B, H) → (T, B, D, H) → (T, B, D·H)
        nodes.append(helper.make_node("Transpose", [f"Y_l{layer}"], [f"Yt_l{layer}"], perm=[0, 2, 1, 3]))
        initializers.append(numpy_helper.from_array(np.array([0, 0, directions * hidden], dtype=np.int64),
                                                    f"shape_l{layer}"))
        layer_input = f"out_l{layer}"
        nodes.append(helper.make_node("Reshape", [f"Yt_l{layer}", f"shape_l{layer}"], [layer_input]))
    return nodes, initializers, layer_input, [f"h_n_l{k}" for k in range(gru.num_layers)]


def gru_to_onnx(gru, *, opset: int = 14) -> bytes:
    """The serialised ONNX model of a `grukit.GRU` (float32 or float64, either reset variant, stacked
    and bidirectional), checked by `onnx.checker`. Raises ImportError without the `onnx` package."""
    _, helper, _ = _onnx()
    hidden, directions = gru.hidden_size, gru.num_directions
    nodes, initializers, layer_input, finals = _gru_layers(gru, "input", "hx")
    nodes.append(helper.make_node("Identity", [layer_input], ["output"]))
    nodes.append(helper.make_node("Concat", finals, ["h_n"], axis=0))
    states = gru.num_layers * directions
    return _checked_model(gru, nodes, initializers, "grukit_gru", opset=opset,
                          inputs=[("input", ["T", "B", gru.input_size]), ("hx", [states, "B", hidden])],
                          outputs=[("output", ["T", "B", directions * hidden]), ("h_n", [states, "B", hidden])])


def _onnx():
    """(onnx, onnx.helper, onnx.numpy_helper), or an ImportError that says how to install them."""
    try:
        import onnx
        from onnx import helper, numpy_helper
    except ImportError as error:
        raise ImportError("exporting to ONNX needs the onnx package: pip install 'grukit[bench]'") from error
    return onnx, helper, numpy_helper


def _checked_model(gru, nodes, initializers, name: str, *, opset: int, inputs, outputs) -> bytes:
    """The serialised model of the graph, its values typed as the GRU's weights, checked by onnx."""
    onnx, helper, _ = _onnx()
    dtype = gru.weight_ih_l0.detach().numpy().dtype
    elem = onnx.TensorProto.DOUBLE if dtype == np.float64 else onnx.TensorProto.FLOAT
    graph = helper.make_graph(nodes, name, [helper.make_tensor_value_info(n, elem, shape) for n, shape in inputs],
                              [helper.make_tensor_value_info(n, elem, shape) for n, shape in outputs], initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="grukit")
    onnx.checker.check_model(model)
    return model.SerializeToString()


def gru_model_to_onnx(gru, head_weight, head_bias, *, readout: str, opset: int = 14) -> bytes:
    """A GRU stack and its linear read-out (grukit's `SequenceModel`) as one ONNX model, checked:
    inputs "input" (B, T, I) batch-first and "hx" (L·D, B, H); outputs "prediction" — (B, O) from
    the top layer's final state per direction, [h_fwd(T); h_bwd(0)], for readout="last", or
    (B, T, O) from every step's output for readout="sequence" — and "h_n" (L·D, B, H), the state
    to feed back as hx for the next chunk of steps (streaming). B and T are dynamic."""
    _, helper, numpy_helper = _onnx()
    hidden, directions = gru.hidden_size, gru.num_directions
    dtype = gru.weight_ih_l0.detach().numpy().dtype
    nodes = [helper.make_node("Transpose", ["input"], ["input_tm"], perm=[1, 0, 2])]  # (T, B, I)
    layer_nodes, initializers, top, finals = _gru_layers(gru, "input_tm", "hx")
    nodes += layer_nodes
    nodes.append(helper.make_node("Concat", finals, ["h_n"], axis=0))
    initializers += [numpy_helper.from_array(head_weight.detach().numpy().T.astype(dtype), "head_wt"),
                     numpy_helper.from_array(head_bias.detach().numpy().astype(dtype), "head_b")]
    outputs = head_weight.shape[0]
    if readout == "last":  # the top layer's states: rows (L − 1)·D … L·D − 1 of h_n, side by side
        last = f"h_n_l{gru.num_layers - 1}"  # (D, B, H)
        nodes.append(helper.make_node("Transpose", [last], ["top_bdh"], perm=[1, 0, 2]))  # (B, D, H)
        initializers.append(numpy_helper.from_array(np.array([0, directions * hidden], dtype=np.int64), "top_shape"))
        nodes.append(helper.make_node("Reshape", ["top_bdh", "top_shape"], ["features"]))  # (B, D·H)
        shape = ["B", outputs]
    else:
        nodes.append(helper.make_node("Transpose", [top], ["features"], perm=[1, 0, 2]))  # (B, T, D·H)
        shape = ["B", "T", outputs]
    nodes.append(helper.make_node("MatMul", ["features", "head_wt"], ["projected"]))
    nodes.append(helper.make_node("Add", ["projected", "head_b"], ["prediction"]))
    states = gru.num_layers * directions
    return _checked_model(gru, nodes, initializers, "grukit_model", opset=opset,
                          inputs=[("input", ["B", "T", gru.input_size]), ("hx", [states, "B", hidden])],
                          outputs=[("prediction", shape), ("h_n", [states, "B", hidden])])
