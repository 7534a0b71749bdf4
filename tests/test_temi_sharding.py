"""TEMI's epoch on 4 devices (batch sharded over 'data') equals the same epoch on 1 device.

Wrong implementations caught: marginals p_h or the pair weight averaged per device instead of over
the global batch; a per-device random draw of examples or neighbours; the loss's mean taken per
shard; gradients not reduced across devices.
"""

import jax
import numpy as np

from ccjax.config import get_base_config
from ccjax.train.temi import fit_features
from ccjax.runtime.mesh import make_mesh


def test_temi_epochs_on_four_devices_equal_one_device():
    c = get_base_config()
    c.method = "temi"
    c.batch_size = 32
    c.num_epochs = 4
    c.learning_rate = 1e-3
    c.warmup_epochs = 1
    c.temi.num_heads = 2
    c.temi.hidden_dim = 16
    c.temi.bottleneck_dim = 8
    c.temi.knn = 4
    c.temi.freeze_last_layer_epochs = 1
    x = np.random.default_rng(0).normal(size=(96, 6)).astype(np.float32)
    many, _, losses4 = fit_features(c, x, 3, make_mesh())
    one, _, losses1 = fit_features(c, x, 3, make_mesh(jax.devices()[:1]))
    assert len(make_mesh().devices.flat) == 4
    np.testing.assert_allclose(losses4, losses1, rtol=1e-5, atol=1e-6)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-6),
                 (many.params, many.model_state), (one.params, one.model_state))
    assert int(many.step) == 4 * 3
