"""TensorBoard's HPARAMS tab: each run's hyper-parameters, status and setting, and the
experiment summary that says which columns the table has and which metrics it shows.

TensorBoard lists the hyper-parameters marked `differs` first, each part by name, and shows the
first five columns and the first five metrics. A sweep's runs each carry its summary: the swept
keys and the keys the sweep sets to other values than the defaults (an experiment preset's
depth, optimizer, lr) are marked `differs`, the constant defaults come after them, then `status`;
the metrics start with val/acc and test/acc. Every run of a sweep names its setting, the swept
values but the seeds, as its session's group: the table shows one row per setting with the
metrics averaged over its seeds, and opens to the seeds. Runs outside a sweep write no summary:
TensorBoard then makes one from the runs in its log directory, marking the keys whose values
differ between them. Numbers that are integers are written as strings ("32", not TensorBoard's
"32.000"), unless the sweep gives the key a float somewhere.
"""

from __future__ import annotations

import hashlib
import time

from omegaconf import DictConfig, OmegaConf
from tensorboard.compat.proto.summary_pb2 import Summary
from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2
from torch.utils.tensorboard import SummaryWriter

from dltips.config.keys import flatten
from dltips.config.plan import SEEDS, Plan
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
    "test/acc": END["test/acc"],
    "val/loss": "val/loss",
    "test/loss": END["test/loss"],
    "best_epoch": END["best_epoch"],
}
STATUSES = list(report.FINISHED)
# Config groups that say nothing about the experiment.
NOT_SHOWN = ("hydra",)
# Keys that never define an experiment: where a run writes, what it resumes, how it is watched
# and where it runs (they change no result).
NOT_DEFINING = (
    *("hydra", "output_dir", "resume", "diagnostics", "eval_subnetworks", *SEEDS),
    *("trainer.device", "trainer.threads", "trainer.progress", "trainer.log_every_n_steps"),
    *("trainer.weight_histograms", "trainer.checkpoint_every_n_epochs"),
)


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
    """The main keys, the config groups chosen (optimizer=adam, …), the keys the sweep sets to
    other values than the defaults and every key overridden."""
    raw = {key: OmegaConf.select(cfg, key) for key in MAIN_KEYS}
    raw |= {group: name for group, name in choices.items() if group not in NOT_SHOWN}
    for key in plan.defining if plan is not None else []:
        raw.setdefault(key, OmegaConf.select(cfg, key))
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
    # `differs` puts the keys that define the experiment before the constant defaults.
    infos += [hparam_info(key, [value], differs=key in plan.defining) for key, value in fixed.items()]
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


def write_session(writer: SummaryWriter, hparams: dict, status: str, group: str = "") -> None:
    """A run's own row in the HPARAMS table: its values and status, in its setting's `group`."""
    start = plugin_data_pb2.SessionStartInfo(start_time_secs=time.time(), group_name=group)
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


def group_name(hparams: dict, plan: Plan | None, overrides: list[str]) -> str:
    """The run's setting as TensorBoard groups sessions: its swept values but the seeds, first
    (the table's Trial ID, cut to its width), then a digest of every other value, so that runs of
    two sweeps that share a name but not their fixed keys stay apart. "" outside a sweep: a row
    of its own."""
    if plan is None or not plan.keys:
        return ""
    setting = sorted((k, str(v)) for k, v in hparams.items() if k not in (*SEEDS, "status"))
    digest = hashlib.sha1(repr(setting).encode()).hexdigest()[:6]
    return " ".join(filter(None, [plan.setting(overrides), f"#{digest}"]))


def defining_keys(cfg: DictConfig) -> list[str]:
    """The config groups and keys whose values in `cfg` (a sweep's config, with Hydra's node)
    differ from the defaults: the groups chosen against dltips-train's own, the keys against
    the defaults of the groups chosen (data=synthetic alone changes no data.* key; a preset's
    depth does). Composed in the running Hydra app."""
    from hydra import compose

    name = cfg.hydra.job.config_name
    groups = chosen_groups(cfg.hydra.runtime.choices)
    base = compose(config_name=name, return_hydra_config=True)
    default_groups = chosen_groups(base.hydra.runtime.choices)
    # Presets (experiment=…) are no default group: their values are what is to be found.
    same_groups = {g: c for g, c in groups.items() if g in default_groups and g not in NOT_SHOWN}
    if any(default_groups[g] != c for g, c in same_groups.items()):  # else the defaults are `base`
        base = compose(config_name=name, overrides=[f"{g}={c}" for g, c in same_groups.items()])
    values = flatten(OmegaConf.to_container(cfg, resolve=False))
    defaults = flatten(OmegaConf.to_container(base, resolve=False))  # its hydra.* keys: not defining
    changed = [g for g in groups if groups[g] != default_groups.get(g)]
    changed += [key for key in values if key not in defaults or values[key] != defaults[key]]
    return sorted(k for k in changed if not any(k == n or k.startswith(f"{n}.") for n in NOT_DEFINING))
