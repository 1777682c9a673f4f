"""The lecture's optimizers, parameter groups for weight decay, learning-rate schedules, and
per-member hyper-parameters for stacked networks."""

from dltips.optim.adagrad import Adagrad
from dltips.optim.momentum import Momentum
from dltips.optim.param_groups import param_groups
from dltips.optim.per_member import member_values, per_member

__all__ = ["Adagrad", "Momentum", "member_values", "param_groups", "per_member"]
