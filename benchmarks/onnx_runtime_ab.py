"""Is ONNX Runtime faster than torch for our network on this CPU? One interleaved run.

    pip install onnxruntime onnx onnxscript     # measurement only, not a dependency
    python benchmarks/onnx_runtime_ab.py [--model default] --threads 2

Exports the model (opset 17, dynamic batch and size), checks ONNX Runtime's logits against
torch's, then times one 256x192 pass: ONNX Runtime float32 (all graph optimisations) against
torch float32 and torch with bfloat16 autocast (what the Predictor uses on CPUs with native bf16).
Results: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch


def _median_ms(fn, reps: int = 30, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="default", help="'default' (shipped) or a .safetensors file")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    import onnxruntime as ort

    from napari_nevseg.core.checkpoint import load_model
    from napari_nevseg.core.session import resolve_model_path

    torch.set_num_threads(args.threads)
    model, meta = load_model(resolve_model_path(args.model), "cpu")
    model.eval()
    h, w = meta["work_size"]
    x = torch.randn(1, 3, h, w)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (x,), str(path), input_names=["x"], output_names=["logits"], dynamo=False,
                              opset_version=17, dynamic_axes={"x": {0: "n", 2: "h", 3: "w"}})
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = args.threads, 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    feed = {"x": x.numpy()}
    with torch.inference_mode():
        reference = model(x).numpy()
    print(f"largest logit difference, ONNX Runtime vs torch: {np.abs(session.run(None, feed)[0] - reference).max():.2e}")

    def torch_bf16():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            model(x)

    for r in range(args.rounds):
        with torch.inference_mode():
            ort_ms = _median_ms(lambda: session.run(None, feed))
            fp32_ms = _median_ms(lambda: model(x))
            bf16_ms = _median_ms(torch_bf16)
        print(f"round {r + 1}: one {w}x{h} pass: ONNX Runtime fp32 {ort_ms:.2f} ms, torch fp32 {fp32_ms:.2f} ms, "
              f"torch bf16 autocast {bf16_ms:.2f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
