#!/usr/bin/python3
"""Writes the ONNX models of bench/onnx_peer.ts into bench/.cache/onnx/ (git-ignored):

  - stqa_default.onnx: the default STQA-Net generator as bench/torch_train_step.py builds it
    (input `jnd` [16,1,128,128], output `maps` [16,3,128,128]; the ConvGRU's 16 steps unrolled);
  - resnet50.onnx: torchvision's ResNet-50 (input `x` [1,3,224,224], output `logits`), the
    backbone of VSFA and SimpleVQA.

Random weights (seed 1): the timings do not depend on them. Needs torch and torchvision
(Debian's python3-torch and python3-torchvision); the benches never do.

    /usr/bin/python3 bench/make_onnx_models.py
"""

import os
import sys
import warnings

import torch
import torchvision

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from torch_train_step import Generator  # noqa: E402

OUT = os.path.join(HERE, ".cache", "onnx")


def export(model, x, name, inp, out):
    path = os.path.join(OUT, name)
    tmp = path + ".tmp"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), (x,), tmp, opset_version=13, input_names=[inp],
                          output_names=[out])
    os.replace(tmp, path)
    print(f"wrote {path} ({os.path.getsize(path) / 2**20:.1f} MiB)")


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(1)
    export(Generator(), torch.rand(16, 1, 128, 128) * 0.02, "stqa_default.onnx", "jnd", "maps")
    export(torchvision.models.resnet50(), torch.rand(1, 3, 224, 224), "resnet50.onnx", "x",
           "logits")


if __name__ == "__main__":
    main()
