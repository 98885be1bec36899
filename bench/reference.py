"""PyTorch reference for converge's training-throughput benchmark.

converge (Rust, libtorch via tch) trains three model families on MNIST. This
script trains the *same* models -- identical architecture and parameter
count, same batch size, optimizer and thread count -- in plain PyTorch, so
that `bench/run.py` can compare training steps per second of the two.

Usage (from the repository root):

    python bench/reference.py --spec SPEC --steps N --warmup W --threads T \
        --data data/mnist [--count]

SPEC is a converge run spec (the "spec" object of `converge plan M --json`),
given inline as JSON or as @FILE. With --count the script prints
{"parameters": N} (the trainable parameter count) and exits; otherwise it
runs W untimed warm-up steps, then N timed steps, and prints one JSON line:

    {"model", "parameters", "batch_size", "threads", "steps", "seconds",
     "steps_per_sec", "peak_rss_mb"}

A step is exactly what converge does: take the next batch of a shuffled
permutation (reshuffled when exhausted), index_select it, forward, loss,
zero_grad, backward, optimizer step; the loss is read back (a sync) every
10 steps, as converge does.
"""

import argparse
import gzip
import json
import math
import resource
import struct
import sys
import time
import warnings
from pathlib import Path

# torch warns at import when numpy is absent; nothing here needs numpy.
warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

MNIST_MEAN = 0.1307
MNIST_STD = 0.3081
CLASSES = 10
ROWS = 28  # MNIST images are 28x28
READ_EVERY = 10  # converge reads the training loss back every this many steps


# --------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------


def read_idx(path, magic, ndims):
    """A gzipped IDX file: (dims, raw unsigned-byte payload)."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    (got,) = struct.unpack(">I", data[:4])
    if got != magic:
        raise ValueError(f"{path}: magic {got:#x}, expected {magic:#x}")
    dims = struct.unpack(f">{ndims}I", data[4 : 4 + 4 * ndims])
    payload = data[4 + 4 * ndims :]
    if len(payload) != math.prod(dims):
        raise ValueError(f"{path}: payload of {len(payload)} bytes, expected {math.prod(dims)}")
    return dims, payload


def load_mnist_train(directory, limit=None):
    """The first `limit` (all if None) training images as float32 [N,1,28,28]
    in [0,1], and their labels as int64 [N]."""
    directory = Path(directory)
    dims, pixels = read_idx(directory / "train-images-idx3-ubyte.gz", 0x00000803, 3)
    (count,), labels = read_idx(directory / "train-labels-idx1-ubyte.gz", 0x00000801, 1)
    n, h, w = dims
    assert n == count, "image and label counts differ"
    images = torch.frombuffer(bytearray(pixels), dtype=torch.uint8).view(n, 1, h, w)
    targets = torch.frombuffer(bytearray(labels), dtype=torch.uint8).to(torch.int64)
    if limit is not None:
        n = min(n, limit)
    images = images[:n].to(torch.float32) / 255.0
    return images.contiguous(), targets[:n].contiguous()


# --------------------------------------------------------------------------
# RNN family
# --------------------------------------------------------------------------


class RnnClassifier(nn.Module):
    """The 28 image rows as a sequence read by an LSTM/GRU/tanh RNN, classified
    by a linear layer from the last layer's final hidden state(s).

    Parameters, with g = gates*H (gates: lstm 4, gru 3, rnn 1), D directions,
    L layers:
        first layer  D * (g*28 + g*H + 2g)
        later layers (L-1) * D * (g*D*H + g*H + 2g)
        head         D*H*10 + 10
    lstm, H=128, L=1, unidirectional: 80896 + 1290 = 82186.
    """

    CELLS = {"lstm": (nn.LSTM, 4), "gru": (nn.GRU, 3), "rnn": (nn.RNN, 1)}

    def __init__(self, cell="lstm", hidden=128, layers=1, bidirectional=False, **_):
        super().__init__()
        module, _gates = self.CELLS[cell]
        self.cell = cell
        self.layers = layers
        self.directions = 2 if bidirectional else 1
        self.hidden = hidden
        kwargs = dict(
            input_size=ROWS,
            hidden_size=hidden,
            num_layers=layers,
            bidirectional=bidirectional,
            batch_first=True,
        )
        if cell == "rnn":
            kwargs["nonlinearity"] = "tanh"
        self.rnn = module(**kwargs)
        self.head = nn.Linear(self.directions * hidden, CLASSES)

    @staticmethod
    def expected_parameters(cell="lstm", hidden=128, layers=1, bidirectional=False, **_):
        d = 2 if bidirectional else 1
        g = RnnClassifier.CELLS[cell][1] * hidden
        first = d * (g * ROWS + g * hidden + 2 * g)
        rest = (layers - 1) * d * (g * d * hidden + g * hidden + 2 * g)
        head = d * hidden * CLASSES + CLASSES
        return first + rest + head

    def forward(self, images):
        b = images.shape[0]
        seq = ((images - MNIST_MEAN) / MNIST_STD).view(b, ROWS, ROWS)
        # No initial state given: PyTorch uses zeros, as converge does.
        _, state = self.rnn(seq)
        h_n = state[0] if self.cell == "lstm" else state  # [L*D, B, H]
        last = h_n[(self.layers - 1) * self.directions :]  # [D, B, H]
        last = last.permute(1, 0, 2).reshape(b, self.directions * self.hidden)
        return self.head(last)

    def train_loss(self, images, labels):
        return F.cross_entropy(self(images), labels)


# --------------------------------------------------------------------------
# Transformer family (ViT)
# --------------------------------------------------------------------------


class Block(nn.Module):
    """A pre-LayerNorm transformer encoder block."""

    def __init__(self, d, heads, mlp, dropout):
        super().__init__()
        self.heads = heads
        self.p = dropout
        self.ln1 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.ln2 = nn.LayerNorm(d)
        self.fc1 = nn.Linear(d, mlp)
        self.fc2 = nn.Linear(mlp, d)

    def forward(self, x):
        b, t, d = x.shape
        h = self.ln1(x)
        qkv = self.qkv(h).reshape(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]  # [B, heads, T, dh]
        a = F.scaled_dot_product_attention(q, k, v, dropout_p=self.p if self.training else 0.0)
        a = a.transpose(1, 2).reshape(b, t, d)
        x = x + F.dropout(self.proj(a), self.p, self.training)
        m = F.dropout(F.gelu(self.fc1(self.ln2(x))), self.p, self.training)
        return x + F.dropout(self.fc2(m), self.p, self.training)


class VisionTransformer(nn.Module):
    """A ViT classifier: patch embedding, a class token, learned positions,
    `layers` pre-LN blocks, final LayerNorm, linear head on the class token.

    Parameters, with P = ph*pw, N = (28/ph)*(28/pw), d = d_model, m = mlp:
        patch_embed  P*d + d
        cls, pos     d + (N+1)*d
        per block    2d (ln1) + 3d*d + 3d (qkv) + d*d + d (proj) + 2d (ln2)
                     + d*m + m (fc1) + m*d + d (fc2)
        final ln     2d
        head         10d + 10
    Defaults (7x7 patches, d 64, 4 heads, 4 layers, mlp 128):
        3200 + 64 + 1088 + 4*33472 + 128 + 650 = 139018.
    """

    def __init__(
        self,
        patch_height=7,
        patch_width=7,
        d_model=64,
        heads=4,
        layers=4,
        mlp=128,
        dropout=0.1,
        **_,
    ):
        super().__init__()
        assert ROWS % patch_height == 0 and ROWS % patch_width == 0, "patches must tile 28x28"
        assert d_model % heads == 0, "d_model must be a multiple of heads"
        self.ph, self.pw = patch_height, patch_width
        self.n = (ROWS // patch_height) * (ROWS // patch_width)
        self.p = dropout
        d = d_model
        self.patch_embed = nn.Linear(patch_height * patch_width, d)
        self.cls = nn.Parameter(torch.zeros(1, 1, d))
        self.pos = nn.Parameter(torch.randn(1, self.n + 1, d) * 0.02)
        self.blocks = nn.ModuleList(Block(d, heads, mlp, dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, CLASSES)

    @staticmethod
    def expected_parameters(
        patch_height=7, patch_width=7, d_model=64, heads=4, layers=4, mlp=128, **_
    ):
        d, m = d_model, mlp
        p = patch_height * patch_width
        n = (ROWS // patch_height) * (ROWS // patch_width)
        block = 2 * d + (3 * d * d + 3 * d) + (d * d + d) + 2 * d + (d * m + m) + (m * d + d)
        return (p * d + d) + d + (n + 1) * d + layers * block + 2 * d + (d * CLASSES + CLASSES)

    def forward(self, images):
        b = images.shape[0]
        x = (images - MNIST_MEAN) / MNIST_STD
        patches = (
            x.reshape(b, ROWS // self.ph, self.ph, ROWS // self.pw, self.pw)
            .permute(0, 1, 3, 2, 4)
            .reshape(b, self.n, self.ph * self.pw)
        )
        x = torch.cat([self.cls.expand(b, -1, -1), self.patch_embed(patches)], 1) + self.pos
        x = F.dropout(x, self.p, self.training)
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x)[:, 0])

    def train_loss(self, images, labels):
        return F.cross_entropy(self(images), labels)


# --------------------------------------------------------------------------
# Diffusion family (DDPM with a small U-Net)
# --------------------------------------------------------------------------


def ddpm_betas(steps, schedule, beta_start, beta_end):
    """The noise schedule beta_1..beta_T, float64."""
    if schedule == "linear":
        return torch.linspace(beta_start, beta_end, steps, dtype=torch.float64)
    if schedule == "cosine":  # Nichol & Dhariwal (2021), s = 0.008
        s = 0.008
        t = torch.arange(steps + 1, dtype=torch.float64)
        f = torch.cos(((t / steps) + s) / (1 + s) * math.pi / 2) ** 2
        alpha_bar = f / f[0]
        return torch.clamp(1 - alpha_bar[1:] / alpha_bar[:-1], max=0.999)
    raise ValueError(f"unknown schedule {schedule!r}")


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv, plus the time embedding, GroupNorm-SiLU-dropout-
    conv, with a 1x1 conv on the skip path when the width changes."""

    def __init__(self, cin, cout, tdim, groups, dropout):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.time = nn.Linear(tdim, cout)
        self.norm2 = nn.GroupNorm(groups, cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.p = dropout
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    @staticmethod
    def parameters_for(cin, cout, tdim):
        skip = cin * cout + cout if cin != cout else 0
        return (
            2 * cin
            + (cin * cout * 9 + cout)
            + (tdim * cout + cout)
            + 2 * cout
            + (cout * cout * 9 + cout)
            + skip
        )

    def forward(self, x, temb):
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.time(F.silu(temb))[:, :, None, None]
        h = self.conv2(F.dropout(F.silu(self.norm2(h)), self.p, self.training))
        return h + self.skip(x)


class UNet(nn.Module):
    """Two resolutions down (28 -> 14 -> 7), two residual blocks in the
    middle, two up with skip connections; predicts the noise."""

    def __init__(self, channels, groups, dropout):
        super().__init__()
        c0, c1, c2 = channels
        assert c0 % 2 == 0, "the sinusoidal embedding needs an even channels[0]"
        tdim = 4 * c0
        self.c0 = c0
        self.temb1 = nn.Linear(c0, tdim)
        self.temb2 = nn.Linear(tdim, tdim)
        rb = lambda cin, cout: ResBlock(cin, cout, tdim, groups, dropout)  # noqa: E731
        self.conv_in = nn.Conv2d(1, c0, 3, padding=1)
        self.down0 = rb(c0, c0)
        self.ds0 = nn.Conv2d(c0, c0, 3, stride=2, padding=1)
        self.down1 = rb(c0, c1)
        self.ds1 = nn.Conv2d(c1, c1, 3, stride=2, padding=1)
        self.mid1 = rb(c1, c2)
        self.mid2 = rb(c2, c2)
        self.us1 = nn.Conv2d(c2, c2, 3, padding=1)
        self.up1 = rb(c2 + c1, c1)
        self.us0 = nn.Conv2d(c1, c1, 3, padding=1)
        self.up0 = rb(c1 + c0, c0)
        self.out_norm = nn.GroupNorm(groups, c0)
        self.out_conv = nn.Conv2d(c0, 1, 3, padding=1)

    def time_embedding(self, t):
        half = self.c0 // 2
        freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half)
        args = t.float()[:, None] * freqs[None]
        emb = torch.cat([torch.sin(args), torch.cos(args)], -1)
        return self.temb2(F.silu(self.temb1(emb)))

    def forward(self, x, t):
        temb = self.time_embedding(t)
        h = self.conv_in(x)
        s0 = self.down0(h, temb)  # c0 x 28 x 28
        h = self.ds0(s0)  # c0 x 14 x 14
        s1 = self.down1(h, temb)  # c1 x 14 x 14
        h = self.ds1(s1)  # c1 x 7 x 7
        h = self.mid2(self.mid1(h, temb), temb)  # c2 x 7 x 7
        h = self.us1(F.interpolate(h, scale_factor=2, mode="nearest"))  # c2 x 14 x 14
        h = self.up1(torch.cat([h, s1], 1), temb)  # c1 x 14 x 14
        h = self.us0(F.interpolate(h, scale_factor=2, mode="nearest"))  # c1 x 28 x 28
        h = self.up0(torch.cat([h, s0], 1), temb)  # c0 x 28 x 28
        return self.out_conv(F.silu(self.out_norm(h)))


class Diffusion(nn.Module):
    """DDPM trained on epsilon prediction with an MSE loss.

    Parameters, with conv(i,o,k) = i*o*k*k + o, lin(i,o) = i*o + o,
    gn(c) = 2c, tdim = 4*c0 and
    RB(i,o) = gn(i) + conv(i,o,3) + lin(tdim,o) + gn(o) + conv(o,o,3)
              + (conv(i,o,1) if i != o else 0):
        lin(c0,tdim) + lin(tdim,tdim) + conv(1,c0,3)
        + RB(c0,c0) + conv(c0,c0,3) + RB(c0,c1) + conv(c1,c1,3)
        + RB(c1,c2) + RB(c2,c2)
        + conv(c2,c2,3) + RB(c2+c1,c1) + conv(c1,c1,3) + RB(c1+c0,c0)
        + gn(c0) + conv(c0,1,3)
    Defaults (channels 32, 64, 128, groups 8): 1112801.
    """

    def __init__(
        self,
        steps=1000,
        schedule="linear",
        beta_start=1e-4,
        beta_end=0.02,
        channels=(32, 64, 128),
        groups=8,
        dropout=0.0,
        **_,  # sampler settings: not used in training
    ):
        super().__init__()
        self.steps = steps
        betas = ddpm_betas(steps, schedule, beta_start, beta_end)
        self.register_buffer("alphas_cumprod", torch.cumprod(1 - betas, 0).to(torch.float32))
        self.net = UNet(list(channels), groups, dropout)

    @staticmethod
    def expected_parameters(channels=(32, 64, 128), **_):
        c0, c1, c2 = channels
        tdim = 4 * c0
        conv = lambda i, o, k: i * o * k * k + o  # noqa: E731
        lin = lambda i, o: i * o + o  # noqa: E731
        rb = lambda i, o: ResBlock.parameters_for(i, o, tdim)  # noqa: E731
        return (
            lin(c0, tdim)
            + lin(tdim, tdim)
            + conv(1, c0, 3)
            + rb(c0, c0)
            + conv(c0, c0, 3)
            + rb(c0, c1)
            + conv(c1, c1, 3)
            + rb(c1, c2)
            + rb(c2, c2)
            + conv(c2, c2, 3)
            + rb(c2 + c1, c1)
            + conv(c1, c1, 3)
            + rb(c1 + c0, c0)
            + 2 * c0
            + conv(c0, 1, 3)
        )

    def train_loss(self, images, _labels):
        x0 = images * 2 - 1
        b = x0.shape[0]
        t = torch.randint(0, self.steps, (b,))
        eps = torch.randn_like(x0)
        ab = self.alphas_cumprod[t][:, None, None, None]
        x_t = ab.sqrt() * x0 + (1 - ab).sqrt() * eps
        return F.mse_loss(self.net(x_t, t), eps)


FAMILIES = {"rnn": RnnClassifier, "transformer": VisionTransformer, "diffusion": Diffusion}


def build_model(model_spec):
    """The model a spec's "model" object names, and its expected parameter
    count from the closed-form formula."""
    params = dict(model_spec)
    kind = params.pop("kind")
    family = FAMILIES[kind]
    return kind, family(**params), family.expected_parameters(**params)


def build_optimizer(training, lr, params):
    name = training.get("optimizer", "adam")
    wd = training.get("weight_decay", 0.0)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=wd)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=wd)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=training.get("momentum", 0.9), weight_decay=wd)
    raise ValueError(f"unknown optimizer {name!r}")


def count_parameters(model):
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# --------------------------------------------------------------------------
# Benchmark
# --------------------------------------------------------------------------


def parse_spec(text):
    if text.startswith("@"):
        text = Path(text[1:]).read_text()
    return json.loads(text)


def profile(kind, step, steps):
    """Print where a training step's wall time goes: inside ATen operators
    (the libtorch kernels converge calls too) or outside them (Python and
    the interpreter's per-call overhead, which converge does not pay).
    wall / operator time bounds the speed-up any libtorch caller can get."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    start = time.perf_counter()
    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        for i in range(steps):
            step(i)
    wall = time.perf_counter() - start
    events = prof.key_averages()
    # Top-level operators only: their total time includes their children.
    top = [e for e in prof.events() if e.cpu_parent is None and not e.name.startswith("ProfilerStep")]
    inside = sum(e.cpu_time_total for e in top) / 1e6
    print(f"{kind}: {steps} steps, {wall / steps * 1e3:.2f} ms/step wall, "
          f"{inside / steps * 1e3:.2f} ms/step inside top-level operators "
          f"({100 * inside / wall:.1f}%), {(wall - inside) / steps * 1e3:.2f} ms/step outside; "
          f"bound on a libtorch caller's speed-up: {wall / inside:.2f}x")
    print(events.table(sort_by="self_cpu_time_total", row_limit=12))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--spec", required=True, help="run spec as JSON, or @FILE")
    ap.add_argument("--steps", type=int, default=30, help="timed training steps")
    ap.add_argument("--warmup", type=int, default=5, help="untimed steps first")
    ap.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    ap.add_argument("--data", default="data/mnist", help="folder with MNIST's .gz files")
    ap.add_argument("--count", action="store_true", help="print the parameter count and exit")
    ap.add_argument(
        "--profile",
        action="store_true",
        help="profile the timed steps (torch.profiler): where a step spends its time",
    )
    args = ap.parse_args(argv)

    spec = parse_spec(args.spec)
    torch.set_num_threads(args.threads)
    torch.manual_seed(spec.get("seed", 0))

    kind, model, expected = build_model(spec["model"])
    parameters = count_parameters(model)
    if parameters != expected:
        sys.exit(f"{kind}: {parameters} parameters, but the formula gives {expected}")
    if args.count:
        print(json.dumps({"parameters": parameters}))
        return

    training = spec.get("training", {})
    batch = training.get("batch_size", 128)
    subset = spec.get("data", {}).get("train_subset")
    images, labels = load_mnist_train(args.data, None if subset is None else max(subset, batch))
    n = images.shape[0]
    batch = min(batch, n)

    opt = build_optimizer(training, spec["lr"], [p for p in model.parameters() if p.requires_grad])
    model.train()

    # Full batches from a shuffled permutation, reshuffled when too few
    # examples are left for another full batch.
    order, cursor = torch.randperm(n), 0

    def step(i):
        nonlocal order, cursor
        if cursor + batch > n:
            order, cursor = torch.randperm(n), 0
        idx = order[cursor : cursor + batch]
        cursor += batch
        loss = model.train_loss(images.index_select(0, idx), labels.index_select(0, idx))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if (i + 1) % READ_EVERY == 0:
            value = loss.item()
            if not math.isfinite(value):
                sys.exit(f"{kind}: non-finite training loss {value} at step {i + 1}")

    for i in range(args.warmup):
        step(i)
    if args.profile:
        profile(kind, step, args.steps)
        return
    start = time.perf_counter()
    for i in range(args.steps):
        step(i)
    seconds = time.perf_counter() - start

    print(
        json.dumps(
            {
                "model": kind,
                "parameters": parameters,
                "batch_size": batch,
                "threads": args.threads,
                "steps": args.steps,
                "seconds": round(seconds, 6),
                "steps_per_sec": round(args.steps / seconds, 4) if seconds > 0 else None,
                # ru_maxrss is in KiB on Linux.
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
