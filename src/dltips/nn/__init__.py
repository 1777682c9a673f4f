"""Network building blocks: activations, Maxout, dropout, losses and the MLP."""

from dltips.nn.activations import ACTIVATION_NAMES, PReLU, create_activation
from dltips.nn.dropout import Dropout
from dltips.nn.losses import CrossEntropyLoss, MSELoss
from dltips.nn.maxout import Maxout
from dltips.nn.mlp import MLP

__all__ = ["ACTIVATION_NAMES", "MLP", "CrossEntropyLoss", "Dropout", "MSELoss", "Maxout", "PReLU", "create_activation"]
