"""A Hydra sweeper for the ITT grid: Hydra's basic cartesian sweep, minus the cells that are
not part of the design, plus a plan of the cells it launches.

The grid is model x intermediate x target x seed, but an intermediate task pairs only with
the targets of its own NLP task (``field`` in the task cards): a sentiment intermediate
task is not run before a topic-classification target, while ``intermediate=none`` (the
baseline) pairs with every target. ``hydra.sweeper.pairing=all`` keeps the full product.

Cells are launched stage-1 first (``hydra.sweeper.order=stage1_first``, the default): the
first cell of each distinct intermediate model, then the baselines, then the cells that
reuse an intermediate model. Parallel workers then train different stage-1 models at the
same time instead of one waiting on another's lock; ``order=grid`` keeps Hydra's order.

Before launching, ``plan.json`` at the sweep root lists every cell (docs/schemas.md) so that
``python -m itt.status`` and the report can name the missing ones. Cells whose directory
holds a result.json of their exact config (``run.skip_existing``, the check each cell makes
itself) are then left out, whatever the launcher, and the log says how many: rerunning a
finished sweep launches nothing, and on SLURM submits no job. With ``run.dry_run=true``
the sweeper lists the cells, each with its directory and state, and launches nothing: no
job config is composed, no model loaded.

(Hydra imports this module with its plugin scanner, which does not register the module
before running it: no ``from __future__ import annotations`` here, it breaks dataclasses.)
"""
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobStatus
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)

CELL_GROUPS = ("model", "intermediate", "target")
PAIRINGS = ("same_field", "all")
ORDERS = ("stage1_first", "grid")


@dataclass
class ITTSweeperConf:
    _target_: str = "hydra_plugins.itt_sweeper.itt_sweeper.ITTSweeper"
    max_batch_size: Optional[int] = None
    params: Optional[Dict[str, str]] = None
    pairing: str = "same_field"  # same_field | all
    order: str = "stage1_first"  # stage1_first | grid
    select: Optional[str] = None  # keep the top_k intermediate tasks per target by this method (itt.selection)
    top_k: Optional[int] = None


ConfigStore.instance().store(group="hydra/sweeper", name="itt", node=ITTSweeperConf, provider="itt")


def stage1_first(jobs: Sequence[Sequence[str]], cells: Sequence[Dict[str, Any]]) -> List[Sequence[str]]:
    """Launch order: the first cell of each intermediate model (its overrides other than the
    target's and stage 2's), then the baselines, then the cells that reuse an intermediate
    model; each group keeps the grid's order."""
    firsts: List[Sequence[str]] = []
    baselines: List[Sequence[str]] = []
    reusing: List[Sequence[str]] = []
    seen = set()
    for job, cell in zip(jobs, cells):
        if str(cell.get("intermediate")) in ("none", "None"):
            baselines.append(job)
            continue
        key = tuple(sorted(o for o in job if not o.lstrip("+~").startswith(("target", "stage2."))))
        (reusing if key in seen else firsts).append(job)
        seen.add(key)
    return firsts + baselines + reusing


def _split(job: Sequence[str]) -> Dict[str, str]:
    out = {}
    for item in job:
        key, _, value = item.partition("=")
        out[key.lstrip("+~")] = value
    return out


class ITTSweeper(BasicSweeper):
    """BasicSweeper with ITT pairing, plan.json and a dry run (see the module docstring)."""

    def __init__(self, max_batch_size: Optional[int], params: Optional[Dict[str, str]] = None,
                 pairing: str = "same_field", order: str = "stage1_first", select: Optional[str] = None,
                 top_k: Optional[int] = None) -> None:
        super().__init__(max_batch_size=max_batch_size, params=params)
        self.select, self.top_k = select, top_k
        if pairing not in PAIRINGS:
            raise ValueError(f"hydra.sweeper.pairing must be one of {', '.join(PAIRINGS)}, not {pairing!r}")
        self.pairing = pairing
        if order not in ORDERS:
            raise ValueError(f"hydra.sweeper.order must be one of {', '.join(ORDERS)}, not {order!r}")
        self.order = order
        self._options: Dict[str, Optional[DictConfig]] = {}

    # ------------------------------------------------------------------ cells
    def _option(self, group: str, choice: str) -> Optional[DictConfig]:
        """A config group option (a task or model card) as written, read through Hydra's
        config search path; None when it does not exist (composition reports that)."""
        path = f"{group}/{choice}"
        if path not in self._options:
            node = None
            try:
                loaded = self.hydra_context.config_loader.repository.load_config(config_path=path)  # type: ignore
                node = loaded.config if loaded is not None else None
            except Exception as exc:  # noqa: BLE001 - a card Hydra cannot read is Hydra's to report
                log.debug("Could not read %s: %s", path, exc)
            self._options[path] = node
        return self._options[path]

    def _name(self, group: str, choice: str) -> str:
        node = self._option(group, choice)
        if node is None:
            return choice
        name = OmegaConf.to_container(node, resolve=False).get("name")  # type: ignore[union-attr]
        return name if isinstance(name, str) and "${" not in name else choice

    def _field(self, group: str, choice: str) -> Optional[str]:
        node = self._option(group, choice)
        if node is None or node.get("type") == "none":
            return None
        value = node.get("field")
        return str(value) if value is not None else None

    def keep(self, job: Sequence[str]) -> bool:
        """Whether a job (its overrides) belongs to the grid under the pairing rule."""
        if self.pairing == "all":
            return True
        choices = self._choices(job)
        inter, target = choices["intermediate"], choices["target"]
        if inter == "none":
            return True
        fi, ft = self._field("intermediate", inter), self._field("target", target)
        return fi is None or ft is None or fi == ft

    def _choices(self, job: Sequence[str]) -> Dict[str, str]:
        assert self.config is not None
        base = self.config.hydra.runtime.choices
        ov = _split(job)
        return {g: ov.get(g, str(base.get(g))) for g in CELL_GROUPS}

    def cell(self, job: Sequence[str]) -> Dict[str, Any]:
        """The plan entry of a job: its cell names (as result.json will hold them), its
        directory relative to the sweep root, and its overrides."""
        assert self.config is not None
        ov = _split(job)
        choices = self._choices(job)
        cell: Dict[str, Any] = {g: ov.get(f"{g}.name", self._name(g, choices[g])) for g in CELL_GROUPS}
        cell["seed"] = int(ov.get("seed", self.config.get("seed", 0)))
        subdir = self._subdir(cell, ov.get("experiment_name", str(self.config.get("experiment_name"))))
        if subdir is not None:
            cell["dir"] = subdir
        cell["overrides"] = list(job)
        return cell

    def _subdir(self, cell: Dict[str, Any], experiment: str) -> Optional[str]:
        """hydra.sweep.subdir for a cell, resolved from the cell's names alone (None when the
        pattern needs more than that)."""
        assert self.config is not None
        pattern = OmegaConf.to_container(self.config.hydra.sweep, resolve=False).get("subdir")  # type: ignore
        names = OmegaConf.create({g: {"name": cell[g]} for g in CELL_GROUPS})
        names.seed = cell["seed"]
        names.experiment_name = experiment
        names.pattern = pattern
        try:
            return str(names.pattern)
        except Exception:  # noqa: BLE001 - an interpolation outside the cell's names
            return None

    def _exact_names(self, jobs: List[List[str]]) -> bool:
        """Cell names can be read off the overrides unless a job switches to another
        experiment than the one composed (which changes the defaults the names come from)."""
        assert self.config is not None
        base = str(self.config.hydra.runtime.choices.get("experiment"))
        return all(_split(job).get("experiment", base) == base for job in jobs)

    def _composed_cell(self, job: Sequence[str]) -> Dict[str, Any]:
        assert self.hydra_context is not None and self.config is not None
        cfg = self.hydra_context.config_loader.load_sweep_config(self.config, list(job))
        cell: Dict[str, Any] = {g: str(cfg[g].name) for g in CELL_GROUPS}
        cell["seed"] = int(cfg.seed)
        try:
            cell["dir"] = str(cfg.hydra.sweep.subdir)
        except Exception:  # noqa: BLE001
            pass
        cell["overrides"] = list(job)
        return cell

    def _check_cells(self, jobs: List[List[str]]) -> None:
        """Compose every distinct cell config (seeds aside) and check it against the schema
        (itt/schema.py) before anything is launched: a mistyped key or a bad value in any card
        of the grid stops the sweep with one line, not one failed cell in ten."""
        from itt.config import to_dict
        from itt.schema import check_ranges

        assert self.hydra_context is not None and self.config is not None
        # One composition per distinct value of each swept key (the first cell with that one
        # value swapped in): a bad card or setting shows in each cell that has it.
        base = list(jobs[0])
        probes, seen = [base], set(base)
        for job in jobs[1:]:
            for item in job:
                if item not in seen:
                    seen.add(item)
                    key = item.split("=", 1)[0]
                    probes.append([item if o.split("=", 1)[0] == key else o for o in base])
        for job in probes:
            try:
                cfg = self.hydra_context.config_loader.load_sweep_config(self.config, job)
                check_ranges(to_dict(cfg), dict(cfg.hydra.runtime.choices))
            except Exception as exc:
                from itt.cli_errors import explain
                from itt.errors import ConfigError

                line = explain(exc)
                if line is None:
                    raise
                raise ConfigError(f"{line.rstrip('.')} (in the cell {' '.join(job)}; nothing was launched)") from exc

    # ------------------------------------------------------------------ sweep
    def sweep(self, arguments: List[str]) -> Any:
        assert self.config is not None and self.launcher is not None and self.hydra_context is not None
        params_conf = self._parse_config()
        params_conf.extend(arguments)
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        overrides = parser.parse_overrides(params_conf)
        every = BasicSweeper.split_arguments(overrides, None)[0]
        jobs = [job for job in every if self.keep(job)]
        unpaired = len(every) - len(jobs)
        from itt.data.availability import leave_out_missing

        jobs, no_data = leave_out_missing(jobs, str(OmegaConf.select(self.config, "paths.assets_dir")))
        if unpaired or no_data:
            why = []
            if unpaired:
                why.append(f"{unpaired} pair an intermediate task with a target of another field and are "
                           "not part of the design (hydra.sweeper.pairing=all runs them too)")
            if no_data:
                why.append(f"{no_data} need data that is not there (see the warning above)")
            log.info("Sweep: %d cells to run. Of the grid's %d combinations, %s.", len(jobs), len(every),
                     "; ".join(why))
        if not jobs:
            raise HydraException("The sweep has no cells left after pairing intermediate tasks with targets.")
        self._check_cells(jobs)
        describe = self.cell if self._exact_names(jobs) else self._composed_cell
        cells = [describe(job) for job in jobs]
        from itt.selection.sweep import select_for_sweep  # hydra.sweeper.select / top_k

        jobs, cells, selection = select_for_sweep(self, jobs, cells)
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        experiment = str(self.config.get("experiment_name"))
        if OmegaConf.select(self.config, "run.dry_run", default=False):
            self._print_plan(sweep_dir, experiment, cells)
            return []

        from itt.plan import write_plan

        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        total, new = write_plan(sweep_dir, experiment, [{k: v for k, v in c.items()} for c in cells],
                                pairing=self.pairing, **selection)
        log.info("Sweep of %d cells into %s (plan.json: %d cells, %d new)", len(cells), sweep_dir, total, new)

        if OmegaConf.select(self.config, "run.skip_existing", default=True):
            jobs, cells = self._unfinished(jobs, cells, sweep_dir)
        if self.order == "stage1_first":
            jobs = stage1_first(jobs, cells)
        size = self.max_batch_size or len(jobs) or 1
        self.overrides = [jobs[i:i + size] for i in range(0, len(jobs), size)]
        returns: List[Any] = []
        crashed: List[str] = []
        start, index = time.perf_counter(), 0
        while not self.is_done():
            batch = self.get_job_batch()
            self.validate_batch_is_legal(batch)
            results = self.launcher.launch(batch, initial_job_idx=index)
            for job, r in zip(batch, results):
                if r.status == JobStatus.FAILED:
                    # The app turns a failing cell into error.json and a None return; a
                    # failed job is one that could not even run its cell (e.g. a crash).
                    crashed.append(" ".join(job))
                    log.error("Job %s did not complete: %s", " ".join(job), r._return_value)
            index += len(batch)
            returns.append(results)
        failed = self._summary(sweep_dir, time.perf_counter() - start)
        if crashed:
            raise HydraException(f"{len(crashed)} job(s) did not complete (see the log above); "
                                 "rerunning the sweep retries them and skips finished cells")
        if failed:
            from itt.errors import SweepFailed

            raise SweepFailed(f"{failed} planned cell(s) failed, each with an error.json (python -m itt.status "
                              f"{sweep_dir}); rerunning the sweep retries them and skips finished cells")
        return returns

    def finished(self, job: Sequence[str], cell: Dict[str, Any], sweep_dir: Path) -> bool:
        """Whether the cell's directory holds a result.json of exactly this cell's config
        (the check the cell itself makes before running: ``run.skip_existing``)."""
        if cell.get("dir") and not (sweep_dir / cell["dir"] / "result.json").exists():
            return False  # the common case, without composing the cell's config
        assert self.hydra_context is not None and self.config is not None
        from itt.config import apply_card_settings, to_dict
        from itt.records import config_hash, finished_result

        try:
            cfg = self.hydra_context.config_loader.load_sweep_config(self.config, list(job))
            run_dir = Path(str(cfg.hydra.sweep.dir)) / str(cfg.hydra.sweep.subdir)
            if not (run_dir / "result.json").exists():
                return False
            data = to_dict(cfg)
            if not data["run"].get("skip_existing", True):
                return False
            return finished_result(run_dir, config_hash(apply_card_settings(data))) is not None
        except Exception as exc:  # noqa: BLE001 - the cell reports its own error when it runs
            log.debug("Cell %s: not known to be finished (%s)", " ".join(job), exc)
            return False

    def _unfinished(self, jobs: List[List[str]], cells: List[Dict[str, Any]],
                    sweep_dir: Path) -> Tuple[List[List[str]], List[Dict[str, Any]]]:
        """The jobs (and their cells) left after leaving out finished cells; says how many."""
        keep = [not self.finished(job, cell, sweep_dir) for job, cell in zip(jobs, cells)]
        skipped = keep.count(False)
        if skipped:
            log.info("%d of %d cells already finished with this config (result.json): not launched; "
                     "%d to launch", skipped, len(jobs), len(jobs) - skipped)
        return [j for j, k in zip(jobs, keep) if k], [c for c, k in zip(cells, keep) if k]

    def _summary(self, sweep_dir: Path, seconds: float) -> int:
        """Logs what the sweep left behind; returns the number of failed cells."""
        from itt.status import sweep_status

        status = sweep_status(sweep_dir)
        log.info("Sweep finished in %.0fs: %d finished, %d failed, %d missing of %s planned cells "
                 "(python -m itt.status %s)", seconds, status.count("finished"), status.count("failed"),
                 status.count("missing"), status.planned, sweep_dir)
        assert self.config is not None
        logger = self.config.get("logger") or {}
        if logger.get("type") == "wandb" and str(logger.get("mode")) == "offline" and \
                next(sweep_dir.glob("**/wandb/offline-run-*"), None) is not None:
            log.info("W&B runs are offline; upload them with: wandb sync %s/*/*/*/wandb/offline-run-*", sweep_dir)
        return status.count("failed")

    @staticmethod
    def _print_plan(sweep_dir: Path, experiment: str, cells: List[Dict[str, Any]]) -> None:
        from itt.plan import format_cell
        from itt.status import run_dir_state

        counts: Dict[str, int] = {}
        print(f"[dry-run] {experiment}: {len(cells)} cells in {sweep_dir}")
        for i, cell in enumerate(cells):
            state = run_dir_state(sweep_dir / cell["dir"])[0] if cell.get("dir") else "unknown"
            state = {"missing": "to run"}.get(state, state)
            counts[state] = counts.get(state, 0) + 1
            print(f"  #{i:<4} {state:<9} {format_cell(cell)}  -> {cell.get('dir', '?')}")
        print("[dry-run] " + ", ".join(f"{n} {s}" for s, n in counts.items()) + "; nothing was run")
