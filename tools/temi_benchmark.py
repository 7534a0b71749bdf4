"""Costs of the frozen-features path on this machine: embedding throughput, TEMI head step time,
exact kNN and k-means at N synthetic embeddings (docs/benchmarks.md, "Frozen features").

    python tools/temi_benchmark.py --what=knn --n=60000 --dim=768
    python tools/temi_benchmark.py --what=knn --n=1000000 --dim=768 --queries=4096   # a slice, extrapolated
    python tools/temi_benchmark.py --what=kmeans --n=60000 --dim=768 --k=10
    python tools/temi_benchmark.py --what=head --n=8192 --dim=768
    python tools/temi_benchmark.py --what=embed --encoder=clip-b32 --images=64
    ... --json=out.json    # also writes the figures (tools/device_check.py's frozen-features rows read them)

Embedding uses randomly initialised encoders of the real architectures (CLIP ViT-B/32, DINOv2-small
configs): the cost of a forward pass does not depend on the weights' values. Every figure printed is
measured; the kNN of a query slice states the linear extrapolation to all N queries (exact blockwise
kNN costs the same per query block). `--tiny` shrinks the encoders to 2 blocks of width 32 on 32x32 crops (a smoke
run: its figures mean nothing).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time

import jax
import numpy as np


def _peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20


def bench_knn(n: int, dim: int, k: int, queries: int | None, block: int, chunk: int) -> dict:
    from ccjax.features.knn import exact_knn, unit_rows
    from ccjax.runtime.mesh import make_mesh

    x = np.random.default_rng(0).standard_normal((n, dim), dtype=np.float32)
    mesh = make_mesh()
    exact_knn(x[:4096], k, mesh, query_block=block, key_chunk=min(chunk, 4096))  # compile a small case first
    if queries is None or queries >= n:
        t0 = time.time()
        exact_knn(x, k, mesh, query_block=block, key_chunk=chunk)
        s = time.time() - t0
        out = _knn_figures(n, dim, k, n, s, s, block, chunk)
        print(f"knn: exact {k}-NN of N={n} x D={dim}: {s:.1f}s ({n / s:.0f} queries/s); peak RSS "
              f"{out['peak_rss_gib']:.1f} GiB; device memory bound: keys {out['keys_gib']:.2f} GiB + "
              f"{block}x{chunk} similarities {block * chunk * 4 / 2**20:.0f} MiB")
        return out
    # a slice of `queries` queries against all N keys, through the same blockwise function
    from ccjax.features.knn import _block_fn
    from jax.sharding import NamedSharding, PartitionSpec as P
    from ccjax.runtime.mesh import replicated

    unit = unit_rows(x)
    chunks = -(-n // chunk)
    keys = np.zeros((chunks * chunk, dim), np.float32)
    keys[:n] = unit
    del x
    keys = jax.device_put(keys.reshape(chunks, chunk, dim), replicated(mesh))
    fn = _block_fn(k, n, chunk, mesh)
    rows = NamedSharding(mesh, P("data"))
    q_idx = np.arange(block, dtype=np.int32)
    fn(jax.device_put(unit[:block], rows), jax.device_put(q_idx, rows), keys)[0].block_until_ready()
    t0 = time.time()
    for start in range(0, queries, block):
        idx = np.arange(start, start + block, dtype=np.int32)
        v, _ = fn(jax.device_put(unit[idx], rows), jax.device_put(idx, rows), keys)
        v.block_until_ready()
    s = time.time() - t0
    out = _knn_figures(n, dim, k, queries, s, s * n / queries, block, chunk)
    print(f"knn: {queries} of N={n} queries x D={dim} against all {n} keys: {s:.1f}s ({queries / s:.0f} queries/s); "
          f"all N extrapolated: {s * n / queries / 60:.0f} min; peak RSS {out['peak_rss_gib']:.1f} GiB; device memory "
          f"bound: keys {out['keys_gib']:.2f} GiB + {block}x{chunk} similarities {block * chunk * 4 / 2**20:.0f} MiB")
    return out


def _knn_figures(n, dim, k, queries, seconds, all_seconds, block, chunk) -> dict:
    return {"what": "knn", "n": n, "dim": dim, "k": k, "queries": queries, "seconds": seconds,
            "seconds_all_queries": all_seconds, "extrapolated": queries < n, "queries_per_s": queries / seconds,
            "peak_rss_gib": _peak_rss_gib(), "keys_gib": n * dim * 4 / 2**30,
            "block_chunk_mib": block * chunk * 4 / 2**20, "platform": jax.devices()[0].platform}


def bench_kmeans(n: int, dim: int, k: int) -> dict:
    from ccjax.features.kmeans import kmeans_baseline

    rng = np.random.default_rng(0)
    centres = rng.standard_normal((k, dim), dtype=np.float32)
    x = centres[rng.integers(0, k, n)] + rng.standard_normal((n, dim), dtype=np.float32)
    _, s = kmeans_baseline(x, k, n_init=1)
    print(f"kmeans: scikit-learn k-means (k-means++, 1 init) K={k} of N={n} x D={dim}: {s:.1f}s; "
          f"peak RSS {_peak_rss_gib():.1f} GiB")
    return {"what": "kmeans", "n": n, "dim": dim, "k": k, "seconds": s, "peak_rss_gib": _peak_rss_gib(),
            "cpus": os.cpu_count()}


def bench_head(n: int, dim: int, k: int, batch: int, heads: int, hidden: int, bottleneck: int) -> dict:
    import jax.numpy as jnp

    from ccjax.config import get_base_config
    from ccjax.train.temi import fit_features

    c = get_base_config()
    c.method = "temi"
    c.batch_size = batch
    c.num_epochs = 100
    c.temi.num_heads, c.temi.hidden_dim, c.temi.bottleneck_dim = heads, hidden, bottleneck
    x = np.random.default_rng(0).standard_normal((n, dim), dtype=np.float32)
    knn = np.random.default_rng(1).integers(0, n, (n, 50)).astype(np.int32)
    from ccjax.runtime.mesh import make_mesh

    t0 = time.time()
    fit_features(c, x, k, make_mesh(), knn=knn, epochs=1)  # compile + 1 epoch
    first = time.time() - t0
    t0 = time.time()
    fit_features(c, x, k, make_mesh(), knn=knn, epochs=2)  # compiled: state init + 2 epochs
    s = (time.time() - t0) / 2
    steps = n // batch
    del jnp
    print(f"head: TEMI {heads} heads ({dim}->{hidden}->{bottleneck}->{k}), batch {batch}: {s / steps * 1000:.0f} ms/step "
          f"({batch * steps / s:.0f} examples/s); first epoch with compilation {first:.1f}s")
    return {"what": "head", "n": n, "dim": dim, "k": k, "heads": heads, "hidden": hidden, "bottleneck": bottleneck,
            "batch": batch, "step_s": s / steps, "examples_per_s": batch * steps / s, "first_epoch_s": first,
            "platform": jax.devices()[0].platform}


TINY_ENCODER = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2)


def bench_embed(encoder: str, images: int, batch: int, tiny: bool = False) -> dict:
    import tempfile

    from transformers import CLIPConfig, Dinov2Config, FlaxCLIPModel, FlaxDinov2Model

    from ccjax.clip.clip import ClipPreprocess
    from ccjax.clip.embed import make_embed_fn
    from ccjax.features.encoders import _dinov2_embed_fn

    del tempfile
    crop = 32 if tiny else 224
    if encoder == "clip-b32":  # openai/clip-vit-base-patch32's vision tower
        size = TINY_ENCODER if tiny else dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                                               num_attention_heads=12)
        cfg = CLIPConfig(vision_config=dict(**size, image_size=crop, patch_size=32 if not tiny else 8),
                         projection_dim=16 if tiny else 512)
        model = FlaxCLIPModel(cfg, _do_init=False)
        params = model.init_weights(jax.random.key(0, impl="rbg"), model.input_shape)
        fn, spec = make_embed_fn, (ClipPreprocess(crop, crop, crop) if tiny else ClipPreprocess())
        params = {k: v for k, v in params.items() if k in ("vision_model", "visual_projection", "logit_scale")}
    else:  # facebook/dinov2-small
        size = TINY_ENCODER if tiny else dict(hidden_size=384, num_hidden_layers=12, num_attention_heads=6,
                                               intermediate_size=1536)
        cfg = Dinov2Config(**size, image_size=crop if tiny else 518, patch_size=8 if tiny else 14)
        model = FlaxDinov2Model(cfg, _do_init=False)
        params = model.init_weights(jax.random.key(0, impl="rbg"), (1, crop, crop, 3))
        fn, spec = _dinov2_embed_fn, ClipPreprocess(crop + crop // 7, crop, crop, (0.485, 0.456, 0.406),
                                                    (0.229, 0.224, 0.225))
    embed = fn(model, spec)
    x = np.random.default_rng(0).integers(0, 256, (batch, 96, 96, 3), dtype=np.uint8)
    embed(params, x).block_until_ready()
    t0 = time.time()
    for _ in range(max(1, images // batch)):
        embed(params, x).block_until_ready()
    s = time.time() - t0
    rate = max(1, images // batch) * batch / s
    print(f"embed: {encoder} ({'tiny' if tiny else 'real architecture'}, random weights), 96x96 uint8 -> {crop} crop, "
          f"batch {batch}: {rate:.1f} images/s on {jax.devices()[0].platform}")
    return {"what": "embed", "encoder": encoder, "tiny": tiny, "batch": batch, "images": max(1, images // batch) * batch,
            "images_per_s": rate, "platform": jax.devices()[0].platform}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--what", choices=("knn", "kmeans", "head", "embed"), required=True)
    ap.add_argument("--n", type=int, default=60000)
    ap.add_argument("--dim", type=int, default=768)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--knn", type=int, default=50)
    ap.add_argument("--queries", type=int, default=None)
    ap.add_argument("--block", type=int, default=1024)
    ap.add_argument("--chunk", type=int, default=8192)
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--heads", type=int, default=16)
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--bottleneck", type=int, default=256)
    ap.add_argument("--encoder", choices=("clip-b32", "dinov2-small"), default="clip-b32")
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--embed_batch", type=int, default=32, help="images per embedding call")
    ap.add_argument("--tiny", action="store_true", help="tiny encoders (embed): a smoke run, figures meaningless")
    ap.add_argument("--json", default=None, help="also write the figures here")
    a = ap.parse_args()
    if a.what == "knn":
        out = bench_knn(a.n, a.dim, a.knn, a.queries, a.block, a.chunk)
    elif a.what == "kmeans":
        out = bench_kmeans(a.n, a.dim, a.k)
    elif a.what == "head":
        out = bench_head(a.n, a.dim, a.k, a.batch, a.heads, a.hidden, a.bottleneck)
    else:
        out = bench_embed(a.encoder, a.images, a.embed_batch, a.tiny)
    if a.json:
        with open(a.json + ".tmp", "w") as f:
            json.dump(out, f, indent=1)
        os.replace(a.json + ".tmp", a.json)


if __name__ == "__main__":
    main()
