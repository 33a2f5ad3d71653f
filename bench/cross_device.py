"""How far a GPU's class probabilities are from the CPU's for the same LSTM classifier (the serving
check's tolerance, moola/serve/check.py): full fp32 (moola.train.fit.full_fp32, what the gates use) and with
TF32 left on (PyTorch's default for cuDNN RNNs on Ampere and later). Run on a device machine by
bench/gpu.sh. Everywhere (no GPU needed) it first prints a CPU proxy: float32 vs float64 (another
summation order, what a GPU's fp32 differs by) and float32 with every weight and input rounded to
TF32's 10-bit mantissa once (an underestimate of TF32: the GPU rounds each matmul's operands).

    python bench/cross_device.py [--windows 512] [--seeds 3]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from moola.models.lstm import EnhancedSimpleLSTM, ModelConfig  # noqa: E402
from moola.serve.check import TOLERANCE  # noqa: E402
from moola.train.fit import predict_proba  # noqa: E402


def tf32(t: torch.Tensor) -> torch.Tensor:
    """Round float32 to TF32's 10-bit mantissa (round to nearest)."""
    i = t.float().contiguous().view(torch.int32)
    return ((i + 0x1000) & ~0x1FFF).view(torch.float32)


def cpu_proxy(windows: int, seeds: int) -> None:
    worst = {"fp64": 0.0, "tf32": 0.0}
    for seed in range(seeds):
        torch.manual_seed(seed)
        cfg = ModelConfig(hidden=128, stride=1)
        model = EnhancedSimpleLSTM(4, 2, cfg)
        X = torch.randn(windows, 105, 4)
        p32 = predict_proba(model, X, torch.device("cpu"))
        with torch.no_grad():
            m64 = EnhancedSimpleLSTM(4, 2, cfg)
            m64.load_state_dict(model.state_dict())
            p64 = torch.softmax(m64.double().eval()(X.double()), 1).float()
            mt = EnhancedSimpleLSTM(4, 2, cfg)
            mt.load_state_dict({k: tf32(v) for k, v in model.state_dict().items()})
            pt = torch.softmax(mt.eval()(tf32(X)), 1)
        worst["fp64"] = max(worst["fp64"], float((p32 - p64).abs().max()))
        worst["tf32"] = max(worst["tf32"], float((p32 - pt).abs().max()))
    print(f"cpu proxy ({windows} windows x {seeds} seeds, hidden 128, PyTorch's initialisation): max |dp| "
          f"fp32 vs fp64 {worst['fp64']:.2e}, fp32 vs TF32-rounded operands {worst['tf32']:.2e}; "
          f"tolerance {TOLERANCE:g}")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--windows", type=int, default=512)
    ap.add_argument("--seeds", type=int, default=3)
    args = ap.parse_args()
    cpu_proxy(args.windows, args.seeds)
    if not torch.cuda.is_available():
        print("cross_device: no CUDA device here; no GPU figure")
        return 0
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    print(f"cross_device: {torch.cuda.get_device_name(0)}, torch {torch.__version__}, {args.windows} windows "
          f"of 105 x 4, hidden 128, {args.seeds} seeds (random weights scaled x3 so outputs are not flat)")
    worst = {"fp32": 0.0, "tf32": 0.0}
    for seed in range(args.seeds):
        torch.manual_seed(seed)
        model = EnhancedSimpleLSTM(4, 2, ModelConfig(hidden=128, stride=1))
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(3.0)
        X = torch.randn(args.windows, 105, 4)
        on_cpu = predict_proba(model, X, cpu)
        on_gpu = predict_proba(model, X, cuda)  # full fp32, as the gates predict
        worst["fp32"] = max(worst["fp32"], float((on_gpu - on_cpu).abs().max()))
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = True
        model.eval().to(cuda)
        with torch.no_grad():
            tf32 = torch.softmax(model(X.to(cuda)).float(), dim=1).cpu()
        worst["tf32"] = max(worst["tf32"], float((tf32 - on_cpu).abs().max()))
        model.to(cpu)
    print(f"max |p_gpu - p_cpu|: full fp32 {worst['fp32']:.2e}, TF32 on {worst['tf32']:.2e}; "
          f"serving tolerance {TOLERANCE:g}: fp32 {'within' if worst['fp32'] <= TOLERANCE else 'OVER'}, "
          f"TF32 {'within' if worst['tf32'] <= TOLERANCE else 'over'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
