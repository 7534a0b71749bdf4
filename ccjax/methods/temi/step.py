"""One epoch of TEMI on cached features, as one jit call (lax.scan over the epoch's steps).

Each step draws B examples (the epoch's permutation, seeded by (seed, epoch)) and for each one
of its k nearest neighbours; the two views are their features. Student and teacher heads run on
both; the loss is ccjax/methods/temi/loss.py; AdamW updates the student; the teacher follows as an
EMA. Schedules follow the official train_main.py: learning rate linear warm-up then cosine to
min_lr (both x batch/256), teacher momentum cosine, teacher temperature linear warm-up per epoch.
Reading: the official code skips the last layer's update (grad None) in the first
`freeze_last_layer` epochs; here its update is zeroed, so Adam's shared step count still advances.
"""

from __future__ import annotations

import functools
import json

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from jax.sharding import NamedSharding, PartitionSpec as P

from ccjax.methods.temi.loss import temi_head_losses
from ccjax.models.temi_heads import head_logits, last_layer_mask, standardise


def temi_optimizer(config, steps_per_epoch: int) -> optax.GradientTransformation:
    """AdamW; weight decay on kernels only (not biases, not the weight-norm gains), the official schedule."""
    t = config.temi
    scale = config.batch_size / 256.0
    warmup = int(config.warmup_epochs * steps_per_epoch)
    total = max(config.num_epochs * steps_per_epoch, warmup + 1)
    lr = optax.warmup_cosine_decay_schedule(0.0, config.learning_rate * scale, warmup, total,
                                            end_value=t.min_learning_rate * scale)

    def decay_mask(params):
        return {"heads": {"mlp": [{"kernel": True, "bias": False} for _ in params["heads"]["mlp"]],
                          "last_v": True, "last_g": False}}

    return optax.adamw(lr, weight_decay=config.weight_decay, mask=decay_mask)


def teacher_temperature(config, epoch):
    t = config.temi
    n = t.warmup_teacher_temp_epochs
    if n <= 1:
        return jnp.float32(t.teacher_temp)
    frac = jnp.minimum(epoch / (n - 1), 1.0)
    return jnp.float32(t.warmup_teacher_temp) + frac * (t.teacher_temp - t.warmup_teacher_temp)


def teacher_momentum(config, it, total_steps: int):
    t = config.temi
    return t.max_momentum_teacher + 0.5 * (t.momentum_teacher - t.max_momentum_teacher) * (
        1 + jnp.cos(jnp.pi * it / total_steps))


@functools.lru_cache(maxsize=4)
def make_train_epoch(config_json: str, steps_per_epoch: int, num_examples: int, mesh):
    """(jit(train_epoch(state, feats [N, D], knn [N, k], epoch) -> (state, mean loss of each head [H])), tx).

    `config_json`: the run's config as JSON (hashable, so the compiled epoch is shared by same-config runs)."""
    config = ml_collections.ConfigDict(json.loads(config_json))
    t = config.temi
    tx = temi_optimizer(config, steps_per_epoch)
    b = config.batch_size
    total = config.num_epochs * steps_per_epoch
    rows = NamedSharding(mesh, P("data"))

    def step(feats, knn, carry, xs):
        state, epoch, temp = carry
        idx, choice = xs  # [B], [B]
        pair = jnp.take_along_axis(knn[idx], choice[:, None], axis=1)[:, 0]  # [B]
        ms = state.model_state["temi"]
        views = [standardise(jax.lax.with_sharding_constraint(feats[i], rows), ms, t.l2_norm) for i in (idx, pair)]
        teacher = jnp.stack([head_logits(ms["teacher"], v) for v in views], axis=1)  # [H, 2, B, K]

        def loss_of(params):
            student = jnp.stack([head_logits(params["heads"], v) for v in views], axis=1)  # [H, 2, B, K]
            losses, pk = temi_head_losses(student, teacher, ms["pk"], beta=t.beta, student_temp=t.student_temp,
                                          teacher_temp=temp, pk_momentum=t.probs_momentum,
                                          positive_pmi=t.positive_pmi)
            return losses.mean(), (losses, pk)

        (loss, (losses, pk)), grads = jax.value_and_grad(loss_of, has_aux=True)(state.params)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        frozen = epoch < t.freeze_last_layer_epochs
        mask = {"heads": last_layer_mask(updates["heads"])}
        updates = jax.tree.map(lambda u, m: jnp.where(frozen & m, jnp.zeros_like(u), u), updates, mask)
        params = optax.apply_updates(state.params, updates)
        m = teacher_momentum(config, state.step, total)
        new_teacher = jax.tree.map(lambda tp, sp: m * tp + (1 - m) * sp, ms["teacher"], params["heads"])
        ok = jnp.isfinite(loss) & jnp.all(jnp.asarray([jnp.all(jnp.isfinite(g)) for g in jax.tree.leaves(grads)]))
        keep = lambda new, old: jax.tree.map(lambda a, c: jnp.where(ok, a, c), new, old)  # noqa: E731
        new_ms = dict(state.model_state, temi=dict(ms, teacher=keep(new_teacher, ms["teacher"]),
                                                   pk=keep(pk, ms["pk"])))
        state = state.replace(
            step=state.step + 1, params=keep(params, state.params), opt_state=keep(opt_state, state.opt_state),
            model_state=new_ms,
            first_nonfinite_step=jnp.where((state.first_nonfinite_step < 0) & ~ok, state.step,
                                           state.first_nonfinite_step))
        return (state, epoch, temp), losses

    def train_epoch(state, feats, knn, epoch):
        key = jax.random.fold_in(jax.random.key(config.seed), epoch)
        perm = jax.random.permutation(jax.random.fold_in(key, 0), num_examples)[:steps_per_epoch * b]
        choice = jax.random.randint(jax.random.fold_in(key, 1), (steps_per_epoch, b), 0, knn.shape[1])
        (state, _, _), losses = jax.lax.scan(functools.partial(step, feats, knn), (state, epoch, teacher_temperature(config, epoch)),
                                             (perm.reshape(steps_per_epoch, b), choice))
        return state, losses.mean(axis=0)  # [H]

    return jax.jit(train_epoch, donate_argnums=0), tx


def set_best_head(state, head_losses: np.ndarray):
    """The state with best_head = the head of lowest mean training loss (official `set_losses`)."""
    ms = state.model_state["temi"]
    best = jnp.asarray(int(np.argmin(head_losses)), jnp.int32)
    return state.replace(model_state=dict(state.model_state, temi=dict(ms, best_head=best)))
