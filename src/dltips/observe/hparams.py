"""TensorBoard's HPARAMS tab: each run's hyper-parameters and status, and the experiment summary
that says which columns the table has, in which order, and which metrics it shows.

TensorBoard lists the hyper-parameters marked `differs` first (then by name) and shows the first
five and the first five metrics. A sweep writes its summary at its root when it starts (the
swept keys marked `differs`, then the main fixed keys, then `status`); its runs write only their
own values. Runs outside a sweep write no summary: TensorBoard then makes one from the runs in
its log directory, marking the keys whose values differ between them, and lists the scalar tags
as metrics in sorted order, the `train/*` and `val/*` curves first (the rest start with "~").
Numbers that are integers are written as strings ("32", not TensorBoard's "32.000"), unless the
sweep gives the key a float somewhere.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from tensorboard.compat.proto.summary_pb2 import Summary
from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2
from torch.utils.tensorboard import SummaryWriter

from dltips.config.plan import Plan
from dltips.observe.tags import END
from dltips.run import report

# Config keys every run records, besides its config groups and the keys overridden.
MAIN_KEYS = (
    "seed",
    "data.batch_size",
    "data.normalize",
    "model.activation",
    "model.depth",
    "model.width",
    "model.dropout",
    "optimizer.lr",
    "regularizer.weight_decay",
)
# The table's metrics: name shown -> the scalar tag TensorBoard reads the run's last value from.
METRICS = {
    "val/acc": "val/acc",
    "val/loss": "val/loss",
    "test/acc": END["test/acc"],
    "test/loss": END["test/loss"],
    "best_epoch": END["best_epoch"],
}
STATUSES = list(report.FINISHED)
# Config groups that say nothing about the experiment.
NOT_SHOWN = ("hydra",)


def chosen_groups(choices) -> dict[str, str]:
    """Hydra's runtime choices, top-level groups only (optimizer=adam, not hydra/launcher=…)."""
    return {k: v for k, v in choices.items() if "/" not in k and v}


def hparam_value(value, as_float: bool = False):
    """A value as TensorBoard takes it: a bool, a float, or a string ("32" for an integer)."""
    if isinstance(value, bool) or (isinstance(value, float) and not as_float):
        return value
    if isinstance(value, (int, float)):
        return float(value) if as_float else str(value)
    return value if isinstance(value, str) else str(value)


def collect_hparams(cfg: DictConfig, choices: dict[str, str], overrides: list[str], plan: Plan | None = None) -> dict:
    """The main keys, the config groups chosen (optimizer=adam, …) and every key overridden."""
    raw = {key: OmegaConf.select(cfg, key) for key in MAIN_KEYS}
    raw |= {group: name for group, name in choices.items() if group not in NOT_SHOWN}
    for item in overrides:
        key, _, value = item.lstrip("+~").partition("=")
        if not key.startswith("hydra"):
            selected = OmegaConf.select(cfg, key, default=value)
            raw[key] = selected if not isinstance(selected, DictConfig) else value
    return {key: hparam_value(v, plan is not None and plan.is_float(key)) for key, v in raw.items()}


def hparam_info(key: str, values: list, differs: bool, interval: list[float] | None = None) -> api_pb2.HParamInfo:
    """A column: its type and domain (the values it takes, or its range) as TensorBoard wants them."""
    info = api_pb2.HParamInfo(name=key, differs=differs)
    if interval is not None or (values and all(isinstance(v, float) for v in values)):
        numbers = interval if interval is not None else values
        info.type = api_pb2.DATA_TYPE_FLOAT64
        info.domain_interval.min_value, info.domain_interval.max_value = min(numbers), max(numbers)
    elif values and all(isinstance(v, bool) for v in values):
        info.type = api_pb2.DATA_TYPE_BOOL
        info.domain_discrete.extend(sorted(set(values)))
    else:
        info.type = api_pb2.DATA_TYPE_STRING
        values = [str(v) for v in values]  # a column of mixed types (lr=0.1,abc) is a string column
        # Integers sort as numbers, not as the strings they are written as ("2" < "10").
        numeric = all(v.lstrip("-").isdigit() for v in values)
        info.domain_discrete.extend(sorted(dict.fromkeys(values), key=int) if numeric else values)
    return info


def experiment(hparams: dict, plan: Plan) -> api_pb2.Experiment:
    """The table of a sweep; `hparams`: the values of its fixed keys."""
    infos = []
    for key in plan.keys:
        values = [hparam_value(v, plan.is_float(key)) for v in plan.swept.get(key, [])]
        infos.append(hparam_info(key, values, differs=True, interval=plan.intervals.get(key)))
    fixed = {k: v for k, v in hparams.items() if k not in plan.keys and k != "status"}
    infos += [hparam_info(key, [value], differs=False) for key, value in fixed.items()]
    infos.append(hparam_info("status", STATUSES, differs=False))
    metrics = [api_pb2.MetricInfo(name=api_pb2.MetricName(tag=tag), display_name=name) for name, tag in METRICS.items()]
    return api_pb2.Experiment(hparam_infos=infos, metric_infos=metrics)


def summary(tag: str, data: plugin_data_pb2.HParamsPluginData) -> Summary:
    """An hparams-plugin event, as tensorboard.plugins.hparams.summary writes it (without
    needing TensorFlow, which that module imports)."""
    value = Summary.Value(tag=tag, metadata=metadata.create_summary_metadata(data), tensor=metadata.NULL_TENSOR)
    return Summary(value=[value])


def write_experiment(writer: SummaryWriter, exp: api_pb2.Experiment) -> None:
    exp.time_created_secs = time.time()
    writer.file_writer.add_summary(summary(metadata.EXPERIMENT_TAG, plugin_data_pb2.HParamsPluginData(experiment=exp)))
    writer.flush()


# The sweep's table at its root. Not named events.out.tfevents.* (which marks a run directory for
# dltips-compare); TensorBoard reads any file whose name holds "tfevents".
SWEEP_FILE = "hparams.tfevents"


def write_sweep_experiment(
    sweep_dir: Path, cfg: DictConfig, choices: dict[str, str], overrides: list[str], plan: Plan
) -> None:
    """The sweep's table in a file of its own at the sweep's root (TensorBoard's run "."),
    replaced, not appended to, when the sweep is re-run into its directory."""
    with tempfile.TemporaryDirectory(dir=sweep_dir, prefix=".hparams-") as tmp:
        writer = SummaryWriter(tmp)
        write_experiment(writer, experiment(collect_hparams(cfg, choices, overrides, plan), plan))
        writer.close()
        (written,) = Path(tmp).glob("events.out.tfevents.*")
        os.replace(written, sweep_dir / SWEEP_FILE)


def write_session(writer: SummaryWriter, hparams: dict, status: str) -> None:
    """A run's own row in the HPARAMS table: its values and status."""
    start = plugin_data_pb2.SessionStartInfo(start_time_secs=time.time())
    for key, value in (hparams | {"status": status}).items():
        field = (
            "bool_value" if isinstance(value, bool) else "number_value" if isinstance(value, float) else "string_value"
        )
        setattr(start.hparams[key], field, value)
    ended = api_pb2.STATUS_SUCCESS if status == report.COMPLETED else api_pb2.STATUS_FAILURE
    end = plugin_data_pb2.SessionEndInfo(status=ended, end_time_secs=time.time())
    for tag, data in ((metadata.SESSION_START_INFO_TAG, start), (metadata.SESSION_END_INFO_TAG, end)):
        key = "session_start_info" if tag == metadata.SESSION_START_INFO_TAG else "session_end_info"
        writer.file_writer.add_summary(summary(tag, plugin_data_pb2.HParamsPluginData(**{key: data})))
    writer.flush()
