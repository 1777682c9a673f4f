"""Which optimizers may train members of one stack; which configs may
(dltips.config.stackable) is decided from the config alone."""

from __future__ import annotations

import torch

from dltips.optim import Adagrad, Momentum

# Optimizers whose update of a weight reads only that weight's gradient and state: stacking
# members into one tensor changes nothing. (Adafactor's factored statistics or LBFGS would not.)
ELEMENTWISE = (
    torch.optim.SGD,
    torch.optim.Adam,
    torch.optim.AdamW,
    torch.optim.RMSprop,
    torch.optim.Adagrad,
    Adagrad,
    Momentum,
)
