"""The ``mdrchca`` command: train, evaluate, recommend, data."""

from __future__ import annotations

import functools
import json
import logging
import shlex
import sys
from pathlib import Path

import click
import torch

from mdrchca.config import Config
from mdrchca.errors import MdrchcaError
from mdrchca.experiments.audit import AUDIT_SCORES
from mdrchca.training.run_folder import guard_output

log = logging.getLogger("mdrchca")


class _Group(click.Group):
    """Prints an :class:`MdrchcaError` as one line (no traceback) and exits with status 2."""

    def make_context(self, info_name, args, parent=None, **extra):  # type: ignore[override]
        command_line = shlex.join(["mdrchca", *args])  # before click consumes them: a run records it
        ctx = super().make_context(info_name, args, parent, **extra)
        ctx.meta["command_line"] = command_line
        return ctx

    def invoke(self, ctx: click.Context):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except MdrchcaError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)


def _path_option(flag: str, dest: str, help: str, required: bool = False):  # noqa: A002 - click's name
    """A file or folder option (``None`` when not given unless ``required``)."""
    return click.option(flag, dest, type=click.Path(path_type=Path), default=None, required=required, help=help)


@click.group(cls=_Group)
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors.")
def cli(verbose: bool, quiet: bool) -> None:
    """MDR-CHCA multimodal recommendation: train, evaluate and recommend with MMRec's protocol."""
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    logging.basicConfig(level=level, format="%(message)s", stream=sys.stderr, force=True)
    logging.getLogger("faiss").setLevel(logging.WARNING)  # its import logs which CPU build it loaded


# -- train ---------------------------------------------------------------------------------------
@cli.command()
@click.option(
    "--model",
    "model_name",
    default=None,
    help="Registered model name (e.g. lightgcn, bpr). Default: the config file's, else lightgcn.",
)
@_path_option("--data", "data_path", "Dataset folder (MMRec layout). Default: the bundled catalogue.")
@click.option("--config", "config_file", type=click.Path(path_type=Path), default=None, help="YAML config file.")
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override one option, e.g. --set epochs=2 (repeatable).",
)
@_path_option("--out", "run_dir", "Run folder for config, log, checkpoint and metrics.", required=True)
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint.")
@click.option("--progress/--no-progress", default=None, help="Per-batch progress bar (default: when on a terminal).")
def train(
    model_name: str | None,
    data_path: Path | None,
    config_file: Path | None,
    overrides: tuple[str, ...],
    run_dir: Path,
    resume: bool,
    progress: bool | None,
) -> None:
    """Train a model with early stopping on validation; report test metrics at the best epoch.

    Writes RUN_DIR/config.yaml, split.inter, run.json, log.csv, best.pt, last.pt and metrics.json. A new run
    needs a missing or empty RUN_DIR; --resume continues the run there (only epochs, patience, max_seconds,
    num_threads, device and eval_batch_size may change).

    On several processes: torchrun --nproc-per-node N -m mdrchca train ... (one training, each process on its
    share of every batch; rank 0 writes RUN_DIR; --resume works with any N). See docs/scaling.md.
    """
    from mdrchca.training import api, distributed

    show = _show_progress(progress)
    command = click.get_current_context().meta.get("command_line")
    if resume:
        if config_file is not None:
            raise MdrchcaError("--resume reads the run's own config.yaml; drop --config")
        run = api.resume(run_dir, overrides, model=model_name, data=data_path, progress=show, command=command)
    else:
        config = Config.load(model=model_name, config_file=config_file, overrides=overrides)
        if data_path is not None:
            config.data.data_path = str(data_path.resolve())
        run = api.train(config, run_dir, progress=show, command=command)
    if distributed.environment_rank() == 0:
        click.echo(json.dumps(run.metrics, indent=2))


def _show_progress(progress: bool | None) -> bool:
    """``--progress/--no-progress``; unset: a bar when standard error is a terminal."""
    return sys.stderr.isatty() if progress is None else progress


def _load_run(run_dir: Path, data_path: Path | None = None):
    """The run in ``run_dir`` on CUDA when there is one (:func:`mdrchca.load_run`)."""
    from mdrchca.training.api import load_run

    return load_run(run_dir, data=data_path, device="cuda" if torch.cuda.is_available() else "cpu")


_DATA_OPTION = click.option(
    "--data",
    "data_path",
    type=click.Path(path_type=Path),
    default=None,
    help="The run's dataset folder, if it has moved since training.",
)


# -- evaluate ------------------------------------------------------------------------------------
@cli.command()
@click.option(
    "--run", "run_dir", type=click.Path(path_type=Path), required=True, help="A run folder written by mdrchca train."
)
@click.option(
    "--split",
    type=click.Choice(["valid", "test"]),
    multiple=True,
    default=("valid", "test"),
    help="Splits to evaluate.",
)
@click.option(
    "--breakdown", is_flag=True, help="Also Recall/NDCG@20 by user activity and hits by item popularity (test)."
)
@_DATA_OPTION
def evaluate(run_dir: Path, split: tuple[str, ...], breakdown: bool, data_path: Path | None) -> None:
    """Re-evaluate a run's best checkpoint with full ranking."""
    from mdrchca.evaluation import Evaluator

    run = _load_run(run_dir, data_path)
    config, dataset, model = run.config, run.dataset, run.model
    evaluator = Evaluator(dataset, config.train.topk, config.train.eval_batch_size)
    out = {name: evaluator.evaluate(model, name) for name in split}
    click.echo(json.dumps({"model": config.model, "dataset": dataset.name, **out}, indent=2))
    if breakdown:
        from mdrchca.experiments.breakdown import by_item_popularity, by_user_activity
        from mdrchca.experiments.report import to_markdown

        click.echo(to_markdown(by_user_activity(model, dataset)))
        click.echo(to_markdown(by_item_popularity(model, dataset)))


# -- recommend -----------------------------------------------------------------------------------
@cli.command()
@click.option(
    "--run", "run_dir", type=click.Path(path_type=Path), required=True, help="A run folder written by mdrchca train."
)
@click.option("--user", "user_id", type=int, default=None, help="userID to recommend for.")
@click.option("--all", "all_users", is_flag=True, help="Recommend for every user (needs --out).")
@click.option("--k", default=20, show_default=True, type=click.IntRange(min=1), help="Number of items per user.")
@click.option("--out", "out_file", type=click.Path(path_type=Path), default=None, help="Output file, .csv or .parquet.")
@_DATA_OPTION
def recommend(
    run_dir: Path, user_id: int | None, all_users: bool, k: int, out_file: Path | None, data_path: Path | None
) -> None:
    """Top-K items per user from a trained run, never an item the user has interacted with (in any split); a
    user with fewer unseen items than K gets those there are, and a warning says so."""
    from mdrchca.io import write_text, write_with

    if (user_id is None) == (not all_users):
        raise MdrchcaError("give exactly one of --user ID or --all")
    if all_users and out_file is None:
        raise MdrchcaError("--all needs --out FILE (.csv or .parquet)")
    if out_file is not None and out_file.suffix not in (".csv", ".parquet"):
        raise MdrchcaError(f"{out_file}: output must end in .csv or .parquet")
    if out_file is not None and out_file.is_dir():
        raise MdrchcaError(f"{out_file}: is a folder; name a .csv or .parquet file for --out")
    if out_file is not None:
        guard_output(out_file, "the recommendations")
    run = _load_run(run_dir, data_path)
    frame = run.recommend(None if all_users else [user_id], k)
    if frame.attrs["short_users"]:
        log.warning(
            "%d user(s) have fewer than %d items they have not interacted with; they get the ones there are",
            frame.attrs["short_users"],
            k,
        )
    if out_file is None:
        click.echo(frame.to_csv(sep="\t", index=False, float_format="%.6f"), nl=False)
        return
    if out_file.suffix == ".csv":
        write_text(out_file, frame.to_csv(index=False, float_format="%.6f"))
    else:
        write_with(out_file, lambda tmp: frame.to_parquet(tmp, index=False))
    click.echo(f"wrote {len(frame)} recommendations for {frame['userID'].nunique()} users to {out_file}")


# -- features -----------------------------------------------------------------------------------
@cli.command()
@_path_option(
    "--catalogue",
    "catalogue_dir",
    "Default: the bundled synthetic catalogue. Raw catalogue: <name>.inter + items.tsv + images.",
)
@_path_option("--out", "out_dir", "Dataset folder to write (takes mdrchca train --data as it is).", required=True)
@click.option(
    "--text-encoder", default=None, help="minilm (packaged all-MiniLM-L6-v2, default) or a local path / hub id."
)
@click.option("--image-encoder", default=None, help="efficientnet-lite0 (default) or a ViT local path / hub id.")
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override an extraction option, e.g. --set pca_dim=128.",
)
@click.option(
    "--shard",
    default=None,
    metavar="I/N",
    help="Process only chunks c with c %% N == I; the last shard to finish writes the store.",
)
@click.option("--progress/--no-progress", default=None, help="Progress bar with items/s (default: when on a terminal).")
def features(
    catalogue_dir: Path,
    out_dir: Path,
    text_encoder: str | None,
    image_encoder: str | None,
    overrides: tuple[str, ...],
    shard: str | None,
    progress: bool | None,
) -> None:
    """Extract token-level text and region-level image features from a raw catalogue.

    Options (--set): text_encoder, image_encoder, modalities, text_columns, image_columns, max_tokens,
    max_phrase_tokens, image_size, batch_size, chunk_size, dtype, pca_dim, device.
    """
    from mdrchca.config import apply_overrides
    from mdrchca.features import FeatureConfig, extract_features

    config = FeatureConfig()
    apply_overrides(config, overrides)
    if text_encoder is not None:
        config.text_encoder = text_encoder
    if image_encoder is not None:
        config.image_encoder = image_encoder
    if catalogue_dir is None:
        from mdrchca.data.synthetic import bundled_dataset_path

        catalogue_dir = bundled_dataset_path()
    states = extract_features(catalogue_dir, out_dir, config, shard, _show_progress(progress))
    click.echo(json.dumps(states))


# -- explain / audit ------------------------------------------------------------------------------
@cli.command()
@click.option("--run", "run_dir", type=click.Path(path_type=Path), required=True, help="A MDR-CHCA run folder.")
@click.option("--item", "item", type=int, required=True, help="itemID to explain.")
@click.option("--out", "out_file", type=click.Path(path_type=Path), required=True, help="PNG file to write.")
@_DATA_OPTION
def explain(run_dir: Path, item: int, out_file: Path, data_path: Path | None) -> None:
    """Picture of one item: per phrase its selected regions as a heat map, tokens coloured by confidence."""
    from mdrchca.experiments.explain import explain_item

    run = _load_run(run_dir, data_path)
    dataset, model = run.dataset, run.model
    click.echo(str(explain_item(model, dataset, item, out_file)))


@cli.command()
@click.option("--run", "run_dir", type=click.Path(path_type=Path), required=True, help="A MDR-CHCA run folder.")
@click.option(
    "--out", "out_file", type=click.Path(path_type=Path), default=None, help="CSV file (default: print the 20 lowest)."
)
@click.option(
    "--by",
    type=click.Choice(AUDIT_SCORES),
    default="agreement",
    show_default=True,
    help="Column to rank by, lowest first (agreement: how well the item's image predicts its text, learned from "
    "the other items, an addition to the paper; confidence: the paper's mean text confidence; "
    "alignment_similarity: mean cosine of each token to its best region).",
)
@_DATA_OPTION
def audit(run_dir: Path, out_file: Path | None, by: str, data_path: Path | None) -> None:
    """Every item with its cross-modal agreement and confidences, lowest first: the items whose text and
    image most likely disagree. With a ground truth (the bundled catalogue's planted mismatches, or the
    items a run's feature_noise corrupted), also each column's AUC at finding them."""
    if out_file is not None:
        guard_output(out_file, "the audit")
    from mdrchca.experiments.audit import audit_ground_truth, audit_items, mismatch_aucs
    from mdrchca.io import write_text

    run = _load_run(run_dir, data_path)
    dataset, model = run.dataset, run.model
    frame = audit_items(model, dataset, by)
    if out_file is not None:
        write_text(out_file, frame.to_csv(index=False, float_format="%.6f"))
        click.echo(f"wrote {len(frame)} items to {out_file}")
    else:
        click.echo(frame.head(20).to_string(index=False))
    known = audit_ground_truth(run.config.data, dataset, model.modality_names)
    if known is not None:
        truth, what = known
        for column, auc in mismatch_aucs(frame, truth).items():
            click.echo(f"AUC of low {column} at finding {what}: {auc:.4f}")


@cli.command()
@click.option("--run", "run_dir", type=click.Path(path_type=Path), required=True, help="A MDR-CHCA run folder.")
@click.option("--split", type=click.Choice(["valid", "test"]), default="valid", show_default=True)
@click.option("--k", default=20, show_default=True, type=click.IntRange(min=1), help="Cut-off of R@K and the overlap.")
@click.option("--draws", default=2, show_default=True, type=click.IntRange(min=1), help="Draws of each random probe.")
@click.option("--out", "out_file", type=click.Path(path_type=Path), default=None, help="CSV file of every row.")
@_DATA_OPTION
def probe(run_dir: Path, split: str, k: int, draws: int, out_file: Path | None, data_path: Path | None) -> None:
    """Does each mechanism act? Switch it off in a copy of the trained model (the weights otherwise kept) and
    print what changes: R@K on the split, the fused content's cosine to the trained one, and the share of each
    user's top-K list that stays the same."""
    if out_file is not None:
        guard_output(out_file, "the probe table")
    from mdrchca.experiments.probe import probe_model, probe_table
    from mdrchca.io import write_text

    run = _load_run(run_dir, data_path)
    frame = probe_model(run.model, run.dataset, split, k, draws, run.config.train.eval_batch_size)
    click.echo(probe_table(frame, split, k))
    if out_file is not None:
        write_text(out_file, frame.to_csv(index=False, float_format="%.6f"))
        click.echo(f"wrote {len(frame)} rows to {out_file}")


# -- report -------------------------------------------------------------------------------------
@cli.command()
@click.argument("runs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--split",
    type=click.Choice(["valid", "test"]),
    default="test",
    show_default=True,
    help="Which split's metrics to show.",
)
@click.option(
    "--metric",
    "metrics",
    multiple=True,
    default=("recall@20", "ndcg@20", "precision@20"),
    show_default=True,
    help="Metric columns (repeatable).",
)
@click.option(
    "--diagnostics",
    is_flag=True,
    help="Also the confidence screen at the best epoch (positive / noisy / unused shares, thresholds, L_conf).",
)
@_path_option(
    "--html",
    "html_file",
    "Write one static page (tables, embedded figures, provenance) over experiment and run folders.",
)
@_path_option(
    "--screen-plot",
    "screen_plot",
    "Draw MDR-CHCA's confidence screen per epoch (pair shares, thresholds) of the runs: FILE.png and FILE.svg.",
)
def report(
    runs: tuple[Path, ...],
    split: str,
    metrics: tuple[str, ...],
    diagnostics: bool,
    html_file: Path | None,
    screen_plot: Path | None,
) -> None:
    """A Markdown results table over finished run folders; with --html, a page over experiment folders
    (written by compare, sweep, ablate, robustness) and run folders; with --screen-plot, the confidence
    screen's curves of MDR-CHCA runs."""
    if screen_plot is not None:
        guard_output(screen_plot, "the figure")
        from mdrchca.experiments.figures import screen_figure
        from mdrchca.experiments.report import screen_logs

        for path in screen_figure(screen_logs(list(runs)), screen_plot.with_suffix("")):
            click.echo(str(path))
        return
    if html_file is not None:
        from mdrchca.experiments.html import write_html_report

        click.echo(str(write_html_report(list(runs), html_file)))
        return
    from mdrchca.experiments.report import results_table, to_markdown

    click.echo(to_markdown(results_table(list(runs), metrics, split, diagnostics)))


# -- experiments -------------------------------------------------------------------------------
def _grid_options(function):
    """The options every grid command shares (data, seeds, overrides, where it writes, workers, queue), handed
    to the command as one :class:`~mdrchca.experiments.runner.Experiment`."""
    options = [
        click.option(
            "--data",
            "data",
            multiple=True,
            help="Dataset folder(s), comma-separated or repeated; 'bundled' for the demo one.",
        ),
        click.option("--out", "out_dir", type=click.Path(path_type=Path), required=True, help="Experiment folder."),
        click.option(
            "--set",
            "overrides",
            multiple=True,
            metavar="KEY=VALUE",
            help="Override one option of every run (MODEL:KEY=VALUE: of that model's runs only).",
        ),
        click.option("--seeds", default="5", show_default=True, help="A seed count (999, 1000, ...) or a list 1,2,3."),
        click.option("--workers", default=1, show_default=True, type=click.IntRange(min=1), help="Local processes."),
        click.option(
            "--threads",
            default=0,
            show_default=True,
            type=click.IntRange(min=0),
            help="Threads per worker (0: cores/workers).",
        ),
        click.option("--storage", default=None, help="Queue database URL for several machines (postgresql://...)."),
        click.option("--progress/--no-progress", default=None, help="A bar over the runs (default: on a terminal)."),
    ]

    @functools.wraps(function)
    def command(*, data, out_dir, overrides, seeds, workers, threads, storage, progress, **own):
        from mdrchca.experiments import plans
        from mdrchca.experiments.grid import GridOptions
        from mdrchca.experiments.runner import Experiment

        show = _show_progress(progress)
        experiment = Experiment(
            out=out_dir,
            datasets=_datasets(data),
            seeds=plans.parse_seeds(seeds),
            overrides=overrides,
            grid=GridOptions(workers=workers, threads=threads, storage=storage, progress=show),
            command=click.get_current_context().meta.get("command_line"),
        )
        _report_experiment(function(experiment, **own))

    for option in reversed(options):
        command = option(command)
    return command


def _datasets(text: tuple[str, ...]) -> list[str | None]:
    """``--data a,b --data c`` -> the dataset folders (``bundled`` is the bundled catalogue)."""
    names = [part.strip() for item in text for part in item.split(",") if part.strip()] or ["bundled"]
    return [None if name == "bundled" else str(Path(name).resolve()) for name in names]


def _names(text: str) -> list[str]:
    return [part.strip().lower() for part in text.split(",") if part.strip()]


def _report_experiment(result) -> None:
    for path in result.files:
        click.echo(str(path))
    click.echo(f"{len(result.frame)} runs in {result.seconds:.1f} s", err=True)
    if result.failed:
        for key, error in result.failed.items():
            click.echo(f"failed: {key}: {error}", err=True)
        raise MdrchcaError(f"{len(result.failed)} run(s) failed; fix the cause and run the same command again")


@cli.command()
@click.option("--model", "model_name", required=True, help="Model to tune.")
@click.option("--data", "data_path", type=click.Path(path_type=Path), default=None, help="Dataset folder.")
@click.option("--trials", default=20, show_default=True, type=click.IntRange(min=1), help="Trials that must end.")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), required=True, help="Folder of the studies.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Fixed option of every trial.")
@click.option("--seed", default=0, show_default=True, help="Seed of the TPE sampler.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(min=1), help="Local processes.")
@click.option("--threads", default=0, show_default=True, type=click.IntRange(min=0), help="Threads per worker.")
@click.option("--storage", default=None, help="Study database URL (default: SQLite OUT/tune.db).")
def tune(
    model_name: str,
    data_path: Path | None,
    trials: int,
    out_dir: Path,
    overrides: tuple[str, ...],
    seed: int,
    workers: int,
    threads: int,
    storage: str | None,
) -> None:
    """Tune a model's search space on validation R@20 (Optuna TPE, median pruning); run again to continue.

    Writes OUT/<dataset>--<model>.yaml with the best settings, which compare --tuned OUT reads.
    """
    from mdrchca.experiments.tune import TuneOptions
    from mdrchca.experiments.tune import tune as run_tune

    options = TuneOptions(trials=trials, seed=seed, workers=workers, threads=threads, storage=storage)
    data = str(data_path.resolve()) if data_path is not None else None
    result = run_tune(model_name.lower(), data, out_dir, options, overrides)
    click.echo(
        json.dumps(
            {
                "study": result.study,
                "best_valid": result.best_value,
                "params": result.best_params,
                "trials_ended": result.finished_trials,
                "file": str(result.path),
            },
            indent=2,
        )
    )


@cli.command()
@click.option("--models", required=True, help="Comma-separated models, e.g. lightgcn,vbpr,freedom,mdrchca.")
@click.option("--tuned", type=click.Path(path_type=Path), default=None, help="Folder of mdrchca tune's studies.")
@click.option("--target", default="mdrchca", show_default=True, help="The model whose gain the Improv. row gives.")
@_grid_options
def compare(experiment, models, tuned, target):
    """The paper's Table 2: every model on every dataset, several seeds, with paired significance tests.

    Writes OUT/results.csv, results.md, results.tex and breakdown.csv; finished runs are reused.
    """
    from mdrchca.experiments import runner

    return runner.compare(experiment, _names(models), tuned=tuned, target=target.lower())


@cli.command()
@click.option("--model", "model_name", default="mdrchca", show_default=True, help="Model to sweep.")
@click.option(
    "--param", "params", multiple=True, required=True, help="name=v1,v2,... (repeatable), e.g. k_r=5,10,15,20."
)
@_grid_options
def sweep(experiment, model_name, params):
    """Figures 4-5: one parameter at a time around the defaults; writes a table and sweep-<param>.png/.svg."""
    from mdrchca.experiments import plans, runner

    return runner.sweep(experiment, model_name.lower(), [plans.parse_param(p) for p in params])


@cli.command()
@click.option("--model", "model_name", default="mdrchca", show_default=True, help="Model whose variants to compare.")
@_grid_options
def ablate(experiment, model_name):
    """Figure 3: the full model and its registered variants (A, B); writes a table and ablation.png/.svg."""
    from mdrchca.experiments import runner

    return runner.ablate(experiment, model_name.lower())


@cli.command()
@click.option("--models", required=True, help="Comma-separated models.")
@click.option("--noise", type=click.Choice(["swap", "gauss", "drop"]), default="swap", show_default=True)
@click.option("--levels", default="0,0.1,0.2,0.4", show_default=True, help="Shares of items corrupted.")
@click.option("--modality", default="image", show_default=True, help="Which modality's features to corrupt.")
@_grid_options
def robustness(experiment, models, noise, levels, modality):
    """Retrain on catalogues with a share of items' features corrupted; plot test R@20 against the share."""
    from mdrchca.experiments import plans, runner

    return runner.robustness(experiment, _names(models), noise, plans.parse_levels(levels), modality)


# -- data ----------------------------------------------------------------------------------------
@cli.group()
def data() -> None:
    """Inspect and generate datasets."""


@data.command()
@click.argument("path", type=click.Path(path_type=Path), required=False)
def stats(path: Path | None) -> None:
    """Counts, density, split sizes and features of a dataset folder (default: the bundled one)."""
    from mdrchca.data.dataset import load_dataset

    click.echo(load_dataset(path).describe())


@data.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--out", "out_dir", type=click.Path(path_type=Path), required=True, help="New dataset folder.")
@click.option("--pca-dim", type=int, required=True, help="Dimensions to keep.")
@click.option("--dtype", type=click.Choice(["float16", "float32"]), default="float16", show_default=True)
def reduce(path: Path, out_dir: Path, pca_dim: int, dtype: str) -> None:
    """Copy a dataset folder with every token / region store reduced to --pca-dim dims by PCA."""
    from mdrchca.features.store import reduce_dataset

    guard_output(out_dir, "the reduced dataset", itself=True)
    for modality in reduce_dataset(path, out_dir, pca_dim, dtype):
        click.echo(f"{modality}: reduced to {pca_dim} dims")


@data.command()
@_path_option("--out", "out_dir", "Target folder. Default: the bundled dataset's cache folder.")
@click.option("--users", "n_users", default=None, type=int, help="Number of users.")
@click.option("--items", "n_items", default=None, type=int, help="Number of items.")
@click.option("--mismatch-rate", default=None, type=float, help="Share of items whose image disagrees with their text.")
@click.option("--seed", default=None, type=int, help="Generator seed.")
def generate(
    out_dir: Path | None, n_users: int | None, n_items: int | None, mismatch_rate: float | None, seed: int | None
) -> None:
    """Generate the synthetic multimodal catalogue (the bundled dataset with default options)."""
    from dataclasses import replace

    from mdrchca.data.synthetic import SyntheticSpec, bundled_dataset_path
    from mdrchca.data.synthetic import generate as generate_catalogue

    changes = {
        k: v
        for k, v in {"n_users": n_users, "n_items": n_items, "mismatch_rate": mismatch_rate, "seed": seed}.items()
        if v is not None
    }
    spec = replace(SyntheticSpec(), **changes)
    path = generate_catalogue(out_dir, spec) if out_dir is not None else bundled_dataset_path(spec)
    click.echo(str(path))


@data.command()
@click.option("--reviews", "reviews_file", type=click.Path(path_type=Path), required=True, help="Reviews file.")
@_path_option("--meta", "meta_file", "Metadata file (none: items without text).")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), required=True, help="New catalogue folder.")
@click.option(
    "--mapping-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Folder with MMRec's u_id_mapping.csv and i_id_mapping.csv: ids exactly MMRec's.",
)
@_path_option("--inter", "inter_file", "An existing .inter (MMRec's or LATTICE's) whose split is taken as it is.")
@click.option("--k-core", "k", default=5, show_default=True, type=click.IntRange(min=0), help="k of the k-core.")
@click.option("--split-seed", default=999, show_default=True, help="Seed of the random split (without --inter).")
@click.option("--progress/--no-progress", default=None, help="Progress bars (default: when on a terminal).")
def amazon(
    reviews_file: Path,
    meta_file: Path | None,
    out_dir: Path,
    mapping_dir: Path | None,
    inter_file: Path | None,
    k: int,
    split_seed: int,
    progress: bool | None,
) -> None:
    """Turn Amazon review and metadata files (2014, 2018 or 2023 layout, gzip or plain) into a raw catalogue
    with MMRec's 5-core filter and split; then fetch its images with `mdrchca data fetch-images`."""
    from mdrchca.data.amazon import convert_amazon

    report = convert_amazon(
        reviews_file,
        meta_file,
        out_dir,
        mapping_dir,
        inter_file,
        k,
        split_seed,
        _show_progress(progress),
    )
    click.echo(json.dumps(report.to_dict(), indent=2))


@data.command("fetch-images")
@click.argument("catalogue", type=click.Path(path_type=Path))
@click.option("--workers", default=8, show_default=True, type=click.IntRange(min=1), help="Concurrent downloads.")
@click.option("--retries", default=3, show_default=True, type=click.IntRange(min=0), help="Retries per image.")
@click.option("--timeout", default=10.0, show_default=True, type=click.FloatRange(min=0.1), help="Seconds of silence.")
@click.option("--deadline", default=60.0, show_default=True, type=click.FloatRange(min=1), help="Seconds per image.")
@click.option("--max-bytes", default=20_000_000, show_default=True, type=click.IntRange(min=1), help="Largest image.")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: when on a terminal).")
def fetch_images(
    catalogue: Path, workers: int, retries: int, timeout: float, deadline: float, max_bytes: int, progress: bool | None
) -> None:
    """Download the catalogue's image URLs into images/, resumably (a rerun fetches only what is missing or
    failed); writes fetch_report.json with the counts and every failure's reason."""
    from mdrchca.data.fetch import FetchOptions
    from mdrchca.data.fetch import fetch_images as fetch

    options = FetchOptions(workers=workers, retries=retries, timeout=timeout, deadline=deadline, max_bytes=max_bytes)
    report = fetch(catalogue, options, _show_progress(progress))
    summary = {k: v for k, v in report.to_dict().items() if k != "failures"}
    click.echo(json.dumps(summary))


def main() -> None:  # pragma: no cover - console entry
    cli()


if __name__ == "__main__":  # pragma: no cover
    main()
