"""TEMI's loss (Adaloglou et al., BMVC 2023, Eq. 6-8), as the official code computes it.

For each head h, with student probabilities q_s = softmax(s / tau_s), teacher
probabilities q_t = softmax(t / tau_t) (no gradient), and the teacher's running
cluster marginal p_h(k) (an EMA of the batch mean of q_t, momentum 0.9, updated
with this batch BEFORE the loss uses it, as the official `compute_weight`):

    pmi_beta(x, x') = log sum_k (q_s(k|x) q_t(k|x'))^beta / p_h(k)
    w(x, x')        = mean over heads and teacher view pairs of sum_k q_t(k|x) q_t(k|x')
    L_h             = mean over ordered view pairs (w != v) of  mean_b  -w * pmi_beta(x_v, x_w)

The two "views" are an image's embedding and one of its k nearest neighbours'.
Readings of what the paper leaves open, taken from the official code:
- the weight w is ONE number per pair, averaged over all heads (not each head's own);
- the loss of head h uses its own p_h; the total loss is the mean of the heads' losses;
- the PMI is not clipped (positive_pmi=False, clip_min=-inf).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def temi_head_losses(student_logits: jax.Array, teacher_logits: jax.Array, pk: jax.Array, *, beta: float,
                     student_temp: float, teacher_temp: float, pk_momentum: float,
                     positive_pmi: bool = False) -> tuple[jax.Array, jax.Array]:
    """(per-head losses float32 [H], updated marginals float32 [H, K]).

    student_logits, teacher_logits: [H, V, B, K] (head, view, example, cluster), global arrays
    (the batch means are over the whole, possibly sharded, batch); pk: [H, K] the marginals before this batch.
    """
    num_views = student_logits.shape[1]
    q_s = jax.nn.softmax(student_logits.astype(jnp.float32) / student_temp, axis=-1)  # [H, V, B, K]
    q_t = jax.nn.softmax(jax.lax.stop_gradient(teacher_logits).astype(jnp.float32) / teacher_temp, axis=-1)
    new_pk = pk_momentum * pk + (1.0 - pk_momentum) * q_t.mean(axis=(1, 2))  # [H, K]
    new_pk = jax.lax.stop_gradient(new_pk)

    pairs = [(a, b) for a in range(num_views) for b in range(a + 1, num_views)]
    weight = jnp.mean(jnp.stack([jnp.sum(q_t[:, a] * q_t[:, b], axis=-1) for a, b in pairs]), axis=(0, 1))  # [B]

    losses = []
    for w in range(num_views):  # teacher view
        for v in range(num_views):  # student view
            if v == w:
                continue
            emi = jnp.sum((q_s[:, v] * q_t[:, w]) ** beta / new_pk[:, None, :], axis=-1)  # [H, B]
            pmi = jnp.log(emi)
            if positive_pmi:
                pmi = jnp.maximum(pmi, 0.0)
            losses.append(jnp.mean(-weight[None, :] * pmi, axis=1))  # [H]
    return jnp.mean(jnp.stack(losses), axis=0), new_pk
