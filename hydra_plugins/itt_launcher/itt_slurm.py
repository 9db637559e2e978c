"""``hydra/launcher=slurm``: the cells of a sweep as SLURM job arrays, through submitit
(hydra-submitit-launcher's SlurmLauncher, with what the ITT grid needs on top).

    python -m itt.train -m experiment=paper hydra/launcher=slurm hydra.launcher.partition=gpu

Resources come from the model card. Each card has a ``resources`` block (``cpus``,
``mem_gb``, ``gpus``, ``time_min``: what one cell of that encoder needs); the launcher's
``cpus_per_task``, ``mem_gb``, ``gpus_per_node`` and ``timeout_min`` are null by default,
which means "from the model card", and a value set for the sweep
(``hydra.launcher.mem_gb=16``) applies to every cell. A sweep may mix encoders (a tiny one
and a base one), and one job array has one resource request for all its tasks, so the
launcher submits **one array per distinct request**: the cells of tiny encoders ask 1 CPU
and no GPU, those of base encoders a GPU, and no cell holds what another encoder needs. The
arrays are submitted together and run side by side; ``array_parallelism`` caps each one.

Waiting: every job of every array is waited for, whatever happens to the others. A job that
SLURM ended without a result (``scancel``, a node failure, out of memory) costs only its
cell, which gets an ``error.json`` naming the job and its final state (from ``sacct``);
the other cells finish, and the sweep then exits non-zero. Preemption and ``scontrol
requeue`` are not failures: SLURM requeues the task, which starts the cell again, and the
cell resumes from its last checkpoint (see conf/hydra/launcher/slurm.yaml).

(No ``from __future__ import annotations``: Hydra's plugin scanner runs this module before
registering it, which breaks dataclasses with string annotations.)
"""
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from hydra.core.config_store import ConfigStore
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, filter_overrides
from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf, SlurmQueueConf
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)

# launcher parameter -> model card ``resources`` key
RESOURCE_KEYS = {"cpus_per_task": "cpus", "mem_gb": "mem_gb", "gpus_per_node": "gpus", "timeout_min": "time_min"}
# What a model card without a resources block asks (the tiny encoders' request).
DEFAULT_RESOURCES = {"cpus": 1, "mem_gb": 4, "gpus": 0, "time_min": 60}


@dataclass
class ITTSlurmConf(SlurmQueueConf):
    _target_: str = "hydra_plugins.itt_launcher.itt_slurm.ITTSlurmLauncher"
    # null: from each cell's model card (resources.cpus / mem_gb / gpus / time_min)
    timeout_min: Optional[int] = None  # type: ignore[assignment]
    cpus_per_task: Optional[int] = None
    gpus_per_node: Optional[int] = None
    mem_gb: Optional[int] = None


# The schema of conf/hydra/launcher/slurm.yaml (which lists it in its defaults).
ConfigStore.instance().store(group="hydra/launcher", name="itt_slurm_schema", node=ITTSlurmConf, provider="itt")


class SlurmJobEnded(RuntimeError):
    """A SLURM job ended without the cell's result (cancelled, killed, node lost)."""


def card_resources(cfg: DictConfig) -> Dict[str, int]:
    """The ``resources`` block of a cell's model card (defaults for keys it leaves out)."""
    from itt.errors import ConfigError

    block = OmegaConf.select(cfg, "model.resources", default=None)
    block = OmegaConf.to_container(block, resolve=True) if OmegaConf.is_config(block) else (block or {})
    if not isinstance(block, dict):
        raise ConfigError(f"model.resources of '{OmegaConf.select(cfg, 'model.name')}' must be a mapping "
                          f"of {', '.join(DEFAULT_RESOURCES)}, not {block!r}.")
    out = dict(DEFAULT_RESOURCES)
    for key, value in block.items():
        if key not in DEFAULT_RESOURCES:
            raise ConfigError(f"model.resources.{key} of '{OmegaConf.select(cfg, 'model.name')}' is not a "
                              f"resource; known: {', '.join(DEFAULT_RESOURCES)}.")
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < (0 if key == "gpus" else 1):
            raise ConfigError(f"model.resources.{key} of '{OmegaConf.select(cfg, 'model.name')}' must be an "
                              f"integer >= {0 if key == 'gpus' else 1}, not {value!r}.")
        out[key] = value
    return out


def cell_request(launcher_params: Dict[str, Any], resources: Dict[str, int]) -> Dict[str, Any]:
    """The launcher parameters of one cell: a value set on the launcher wins over the card's."""
    out = {}
    for param, key in RESOURCE_KEYS.items():
        value = launcher_params.get(param)
        out[param] = resources[key] if value is None else value
    if not out["gpus_per_node"]:
        out["gpus_per_node"] = None  # no --gpus-per-node line: CPU nodes may not know GPUs at all
    return out


class ITTSlurmLauncher(SlurmLauncher):
    """SlurmLauncher with per-card resources, one array per request, and lost jobs as failed
    cells (see the module docstring)."""

    def executor(self, request: Dict[str, Any]) -> Any:
        """The submitit executor for cells asking ``request`` (what SlurmLauncher.launch builds)."""
        import submitit

        params = dict(self.params, **request)
        executor = submitit.AutoExecutor(folder=params.pop("submitit_folder"), cluster="slurm",
                                         slurm_max_num_timeout=params.pop("max_num_timeout"))
        base = set(OmegaConf.structured(BaseQueueConf).keys())
        executor.update_parameters(**{k if k in base else f"slurm_{k}": v for k, v in params.items()})
        return executor

    def cell_configs(self, job_overrides: Sequence[Sequence[str]]) -> List[DictConfig]:
        assert self.hydra_context is not None and self.config is not None
        return [self.hydra_context.config_loader.load_sweep_config(self.config, list(o)) for o in job_overrides]

    def groups(self, configs: Sequence[DictConfig]) -> Dict[Tuple[Tuple[str, Any], ...], List[int]]:
        """Job indices by resource request (the key: the request's items, sorted)."""
        out: Dict[Tuple[Tuple[str, Any], ...], List[int]] = {}
        for i, cfg in enumerate(configs):
            request = cell_request(self.params, card_resources(cfg))
            out.setdefault(tuple(sorted(request.items())), []).append(i)
        return out

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        assert self.config is not None
        if not job_overrides:
            return []
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        configs = self.cell_configs(job_overrides)
        submitted: List[Tuple[int, Any]] = []
        for key, indices in self.groups(configs).items():
            request = dict(key)
            params = []
            for i in indices:
                idx = initial_job_idx + i
                log.info("\t#%d : %s", idx, " ".join(filter_overrides(job_overrides[i])))
                params.append((list(job_overrides[i]), "hydra.sweep.dir", idx, f"job_id_for_{idx}",
                               Singleton.get_state()))
            jobs = self.executor(request).map_array(self, *zip(*params))
            gpus = request["gpus_per_node"] or 0
            log.info("SLURM array %s: %d cells, each %d CPUs, %d GB, %d GPUs, %d min", jobs[0].job_id.split("_")[0],
                     len(jobs), request["cpus_per_task"], request["mem_gb"], gpus, request["timeout_min"])
            submitted += list(zip(indices, jobs))
        returns: Dict[int, JobReturn] = {}
        for i, job in submitted:
            returns[i] = self._wait(job, configs[i], list(job_overrides[i]))
        return [returns[i] for i in range(len(job_overrides))]

    def _wait(self, job: Any, cfg: DictConfig, overrides: List[str]) -> JobReturn:
        """The job's return; a job that SLURM ended without one fails its cell. An error while
        the job is still queued or running (a failed sacct poll) is logged and waited out."""
        import time

        while True:
            try:
                return job.results()[0]
            except Exception as exc:  # noqa: BLE001 - one lost job costs its cell, not the sweep
                if not job.watcher.is_done(job.job_id, mode="force"):
                    log.warning("SLURM job %s (%s) not finished: %s: %s; waiting", job.job_id,
                                job.watcher.get_state(job.job_id, mode="cache"), type(exc).__name__,
                                str(exc).splitlines()[0] if str(exc) else "")
                    time.sleep(5)
                    continue
                return self._lost(job, cfg, overrides, exc)

    def _lost(self, job: Any, cfg: DictConfig, overrides: List[str], exc: BaseException) -> JobReturn:
        """A job that ended without a result: error.json for its cell (unless the cell finished)."""
        from itt import records
        from itt.config import to_dict

        run_dir = Path(str(cfg.hydra.sweep.dir)) / str(cfg.hydra.sweep.subdir)
        state = str(job.watcher.get_state(job.job_id, mode="cache"))
        reason = SlurmJobEnded(f"SLURM job {job.job_id} ended in state {state} without a result "
                               f"(submitit log: {job.paths.stderr})")
        reason.__cause__ = exc  # the traceback in error.json: submitit's account of the job
        if records.run_dir_state(run_dir)[0] == "finished":
            log.warning("%s, but its cell had finished: %s", reason, run_dir)
            return JobReturn(overrides=overrides, working_dir=str(run_dir), status=JobStatus.COMPLETED,
                             _return_value=None)
        records.write_error(run_dir, to_dict(cfg), reason, None)
        log.error("%s FAILED: %s; error.json in %s (%s: %s)", " ".join(filter_overrides(overrides)), reason, run_dir,
                  type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")
        return JobReturn(overrides=overrides, working_dir=str(run_dir), status=JobStatus.FAILED,
                         _return_value=reason)
