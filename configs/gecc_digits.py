"""GeCC on the embedded default dataset: scikit-learn's 1,797 8x8 handwritten digits.

Exactly cc_digits.py's budget and settings (model, batch, epochs, learning
rate, augmentation: it is loaded from that file), with GeCC's objective: CDSM
reference view after every ConvNet block with probability
t = 0.1 * (epoch // (E/10) + 1) (E = num_epochs), weights W_z and W_c.
Needs no download. `python -m ccjax train --config=configs/gecc_digits.py`
"""

import importlib.util
import pathlib


def _cc_digits_config():
    path = pathlib.Path(__file__).with_name("cc_digits.py")
    spec = importlib.util.spec_from_file_location("_ccjax_cc_digits_config", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config()


def get_config():
    c = _cc_digits_config()
    c.method = "gecc"
    c.gecc.reference = "cdsm"
    c.gecc.weights = "both"
    return c
