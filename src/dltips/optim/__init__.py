"""The lecture's optimizers, parameter groups for weight decay, and learning-rate schedules."""
from dltips.optim.adagrad import Adagrad
from dltips.optim.momentum import Momentum
from dltips.optim.param_groups import param_groups

__all__ = ["Adagrad", "Momentum", "param_groups"]
