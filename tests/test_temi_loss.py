"""TEMI's loss, marginals and gradients against the official code's numbers (tests/goldens/temi_loss.npz,
written by tools/temi_goldens.py from HHU-MMBS/TEMI-official-BMVC2023; no torch needed here).

Wrong implementations each test catches:
- beta applied to the product's log, or to q_s only; p_h used before its EMA update; the weight w computed
  per head rather than averaged over heads; the teacher's temperature schedule ignored; the views' pairs
  not skipping v == w; the PMI clipped when positive_pmi is off (or not when on) -> the loss values differ;
- a gradient flowing into the teacher, or the weight w not detached -> the gradients differ;
- GELU approximated by tanh, the weight norm over the wrong axis, a missing L2 normalisation -> the head
  logits differ.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ccjax.models.temi_heads import head_logits
from ccjax.methods.temi.loss import temi_head_losses

GOLDENS = "tests/goldens/temi_loss.npz"


def _case(name):
    with np.load(GOLDENS) as z:
        return {k.split("/", 1)[1]: z[k] for k in z.files if k.startswith(name + "/")}


def _params(case, who):
    n = sum(1 for k in case if k.startswith(f"{who}_mlp") and k.endswith("_kernel"))
    f = lambda a: jnp.asarray(a, jnp.float32)  # noqa: E731
    return {"mlp": [{"kernel": f(case[f"{who}_mlp{i}_kernel"]), "bias": f(case[f"{who}_mlp{i}_bias"])}
                    for i in range(n)],
            "last_v": f(case[f"{who}_last_v"]), "last_g": f(case[f"{who}_last_g"])}


def _loss(student, teacher, case):
    views = jnp.stack([jnp.asarray(case["x"], jnp.float32), jnp.asarray(case["x_pair"], jnp.float32)])  # [2, B, D]
    s = jnp.stack([head_logits(student, v) for v in views], axis=1)  # [H, 2, B, K]
    t = jnp.stack([head_logits(teacher, v) for v in views], axis=1)
    losses, pk = temi_head_losses(s, t, jnp.asarray(case["pk0"], jnp.float32), beta=float(case["beta"]),
                                  student_temp=float(case["student_temp"]), teacher_temp=float(case["teacher_temp"]),
                                  pk_momentum=0.9, positive_pmi=bool(case["positive_pmi"]))
    return losses.mean(), (losses, pk, s, t)


def test_goldens_come_from_the_official_code():
    with np.load(GOLDENS) as z:
        assert str(z["official_commit"]) == "c6a81a6d684f7b8d19500c4ec0f846335e90ee3a"


@pytest.mark.parametrize("name", ["beta06", "beta1_pos"])
def test_temi_loss_and_gradients_equal_official(name):
    case = _case(name)
    student, teacher = _params(case, "student"), _params(case, "teacher")
    (total, (losses, pk, s, t)), grads = jax.value_and_grad(_loss, has_aux=True)(student, teacher, case)
    h, b = case["student_logits"].shape[0], case["x"].shape[0]
    official_s = case["student_logits"].reshape(h, 2, b, -1)  # official rows: [view 0 batch; view 1 batch]
    np.testing.assert_allclose(s, official_s, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(t, case["teacher_logits"].reshape(h, 2, b, -1), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(pk, case["pk1"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(losses, case["head_losses"], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(total, case["loss"], rtol=1e-4, atol=1e-5)
    for i, layer in enumerate(grads["mlp"]):
        np.testing.assert_allclose(layer["kernel"], case[f"grad_mlp{i}_kernel"], rtol=2e-3, atol=1e-6)
        np.testing.assert_allclose(layer["bias"], case[f"grad_mlp{i}_bias"], rtol=2e-3, atol=1e-6)
    np.testing.assert_allclose(grads["last_v"], case["grad_last_v"], rtol=2e-3, atol=1e-6)
    np.testing.assert_allclose(grads["last_g"], case["grad_last_g"], rtol=2e-3, atol=1e-6)


def test_temi_loss_is_not_the_unweighted_or_per_head_weighted_variant():
    """The goldens separate the readings: a per-head weight gives a loss measurably off the official one."""
    case = _case("beta06")
    student, teacher = _params(case, "student"), _params(case, "teacher")
    _, (losses, pk, s, t) = _loss(student, teacher, case)
    q_t = jax.nn.softmax(t / float(case["teacher_temp"]), -1)
    q_s = jax.nn.softmax(s / float(case["student_temp"]), -1)
    w_per_head = jnp.sum(q_t[:, 0] * q_t[:, 1], -1)  # [H, B]
    pmi = lambda v, w: jnp.log(jnp.sum((q_s[:, v] * q_t[:, w]) ** 0.6 / pk[:, None], -1))  # noqa: E731
    wrong = 0.5 * (jnp.mean(-w_per_head * pmi(1, 0), 1) + jnp.mean(-w_per_head * pmi(0, 1), 1))
    assert np.max(np.abs(np.asarray(wrong) - case["head_losses"])) > 1e-3
