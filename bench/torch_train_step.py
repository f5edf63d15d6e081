#!/usr/bin/python3
"""PyTorch CPU reference of one STQA-Net generator training step, for bench/train_step_bench.ts.

The same computation as the bench's STQA step, layer for layer: the default generator config
(input jnd x 16; encoder convs 1->16, 16->32 s2, 32->64 s2; ConvGRU 64 hidden with its input
conv over all frames at once and its state conv frame by frame; 1x1 fusion 128->64; decoder
3x3 convs 96->32 and 48->16 after bilinear 2x upsampling with skips; output conv 16->3;
maps tanh(u - mean_hw(u)); leaky ReLU 0.2), perturbation clamp(x + jnd * maps, 0, 1), the
bundled vsfa-mini victim's architecture (x - 0.5 and 0.25 x MSCN (5x5 mean, c = 1/64) -> four
3x3 stride-2 convs 6->16->24->32->48 with leaky ReLU 0.1, global mean and log(std + 1e-3)
pooling, linear 96->32, GRU(32, 32) over frames, linear 32->1, VSFA's hysteresis pooling with
tau 12, gamma 0.5), loss |score - 1| + 0.1 mean(maps^2), backward, Adam. Random weights
(timing does not depend on them); one clip of 16 frames of 128x128.

Protocol (stdin / stdout, one line each): after set-up and one warm-up step the script prints
`ready {json}` (torch version, threads); each line `step` runs one training step and answers
the step's wall time in milliseconds; `quit` ends it.

    /usr/bin/python3 bench/torch_train_step.py
"""

import json
import os
import sys
import time

import torch
import torch.nn.functional as F

T, H, W = 16, 128, 128
torch.manual_seed(1)
torch.set_num_threads(len(os.sched_getaffinity(0)))


def conv(cin, cout, k=3):
    m = torch.nn.Conv2d(cin, cout, k, padding=(k - 1) // 2)
    return m


class Generator(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.enc0, self.enc1, self.enc2 = conv(1, 16), conv(16, 32), conv(32, 64)
        self.gru_x, self.gru_h = conv(64, 192), conv(64, 192)
        self.fuse = conv(128, 64, 1)
        self.dec0, self.dec1, self.out = conv(96, 32), conv(48, 16), conv(16, 3)

    def forward(self, jnd):  # jnd [T,1,H,W]
        lr = lambda x: F.leaky_relu(x, 0.2)
        f0 = lr(self.enc0(jnd * 16))
        f1 = lr(F.conv2d(f0, self.enc1.weight, self.enc1.bias, stride=2, padding=1))
        f = lr(F.conv2d(f1, self.enc2.weight, self.enc2.bias, stride=2, padding=1))
        gx = self.gru_x(f)
        h = torch.zeros(1, 64, f.shape[2], f.shape[3])
        hs = []
        for i in range(jnd.shape[0]):
            gh = self.gru_h(h)
            xr, xz, xn = gx[i : i + 1].chunk(3, dim=1)
            hr, hz, hn = gh.chunk(3, dim=1)
            r = torch.sigmoid(xr + hr)
            z = torch.sigmoid(xz + hz)
            n = torch.tanh(xn + r * hn)
            h = (1 - z) * n + z * h
            hs.append(h)
        fused = torch.cat([f, torch.cat(hs, 0)], 1)
        up = lambda x: F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        zz = lr(self.fuse(fused))
        d0 = lr(self.dec0(torch.cat([up(zz), f1], 1)))
        d1 = lr(self.dec1(torch.cat([up(d0), f0], 1)))
        u = self.out(d1)
        return torch.tanh(u - u.mean(dim=(2, 3), keepdim=True))


class VsfaMini(torch.nn.Module):
    def __init__(self):
        super().__init__()
        ch = [6, 16, 24, 32, 48]
        self.convs = torch.nn.ModuleList(conv(ch[i], ch[i + 1]) for i in range(4))
        self.reduce = torch.nn.Linear(96, 32)
        self.gru = torch.nn.GRU(32, 32, batch_first=True)
        self.head = torch.nn.Linear(32, 1)

    def forward(self, x):  # [T,3,H,W]
        pool = lambda t: F.avg_pool2d(t, 5, 1, 2, count_include_pad=False)
        mu = pool(x)
        var = F.relu(pool(x * x) - mu * mu)
        m = (x - mu) / (torch.sqrt(var + 1e-6) + 1 / 64)
        y = torch.cat([x - 0.5, 0.25 * m], 1)
        for c in self.convs:
            y = F.leaky_relu(F.conv2d(y, c.weight, c.bias, stride=2, padding=1), 0.1)
        feats = torch.cat([y.mean(dim=(2, 3)), torch.log(y.std(dim=(2, 3)) + 1e-3)], 1)
        hs, _ = self.gru(self.reduce(feats).unsqueeze(0))
        q = self.head(hs).reshape(1, 1, 1, -1)  # per-frame scores
        tau, gamma = 12, 0.5
        l = -F.max_pool2d(F.pad(-q, (tau - 1, 0), value=-1e9), (1, tau), 1)
        e = torch.exp(-(q - q.mean().detach()))
        num = F.avg_pool2d(F.pad(q * e, (0, tau - 1)), (1, tau), 1)
        den = F.avg_pool2d(F.pad(e, (0, tau - 1)), (1, tau), 1)
        return (gamma * l + (1 - gamma) * num / den).mean()


def main():
    gen, victim = Generator(), VsfaMini()
    for p in victim.parameters():
        p.requires_grad_(False)
    opt = torch.optim.Adam(gen.parameters(), lr=1e-4)
    g = torch.Generator().manual_seed(2026)
    frames = (torch.rand(T, 3, H, W, generator=g) * 255).round() / 255
    jnd = torch.rand(T, 1, H, W, generator=g) * (6 / 255)

    def step():
        t0 = time.perf_counter()
        maps = gen(jnd)
        adv = torch.clamp(frames + jnd * maps, 0, 1)
        loss = (victim(adv) - 1).abs() + 0.1 * (maps * maps).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if not torch.isfinite(loss):
            raise RuntimeError(f"training loss is {loss.item()}")
        return 1000 * (time.perf_counter() - t0)

    step()
    info = {"torch": torch.__version__, "threads": torch.get_num_threads()}
    print("ready " + json.dumps(info), flush=True)
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "quit":
            break
        if cmd != "step":
            raise SystemExit(f"unknown command {cmd!r}")
        print(f"{step():.3f}", flush=True)


if __name__ == "__main__":
    main()
