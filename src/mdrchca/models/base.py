"""The contract every recommender fulfils, and the model registry."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, NamedTuple

import numpy as np
import torch
from torch import nn

from mdrchca.config import ModelConfig, SearchParam, check_options, register_model_config
from mdrchca.data.dataset import RecDataset
from mdrchca.data.graph import degree_sensitive_dropout_adjacency, symmetric_normalized_adjacency, to_torch_sparse
from mdrchca.errors import ConfigError, DataError

RowGather = Callable[[torch.Tensor, int], torch.Tensor]
"""``gather(rows, total)``: every rank's strided rows ``rank, rank + N, ...`` put back in one-process order."""


class Batch(NamedTuple):
    """One training step's triples: ``users[k]`` prefers ``pos_items[k]`` over ``neg_items[k]``."""

    users: torch.Tensor
    pos_items: torch.Tensor
    neg_items: torch.Tensor

    def to(self, device: torch.device) -> Batch:
        return Batch(*(t.to(device, non_blocking=True) for t in self))


def bpr_loss(pos_scores: torch.Tensor, neg_scores: torch.Tensor) -> torch.Tensor:
    r"""Bayesian personalised ranking: :math:`-\frac{1}{B}\sum \ln \sigma(\hat y_{ui} - \hat y_{uj})`."""
    return -nn.functional.logsigmoid(pos_scores - neg_scores).mean()


def bpr_on_embeddings(users: torch.Tensor, pos_items: torch.Tensor, neg_items: torch.Tensor) -> torch.Tensor:
    r"""BPR on inner-product scores: :math:`\hat y_{ui} = e_u^\top e_i`, rows ``[B, d]`` of the batch's users,
    positive and negative items."""
    return bpr_loss((users * pos_items).sum(-1), (users * neg_items).sum(-1))


def embedding_l2(*embeddings: torch.Tensor) -> torch.Tensor:
    r"""L2 penalty on the embeddings used in a batch: :math:`\frac{1}{2B}\sum_e \lVert e \rVert_2^2`."""
    batch = embeddings[0].shape[0]
    return sum(e.pow(2).sum() for e in embeddings) / (2 * batch)


def norm_penalty(*embeddings: torch.Tensor) -> torch.Tensor:
    r"""MMRec's ``EmbLoss``: :math:`\frac{1}{B}\sum_e \lVert e \rVert_F` (Frobenius norms, not squared), for
    models whose default ``reg_weight`` is MMRec's."""
    return sum(e.norm(p=2) for e in embeddings) / embeddings[-1].shape[0]


class ColumnCollectives(NamedTuple):
    """What a training with ``parallel=columns`` hands a model (:meth:`Recommender.share_columns`):
    ``sum_over_ranks(partial)``, the element-wise sum of every rank's tensor with the identity as its gradient;
    ``gather(local)``, the whole ``[rows, width]`` tensor from every rank's columns (no gradient); and
    ``gather_rows(rows, total)``, every rank's rows ``rank, rank + N, ...`` in one-process order, whose gradient
    is summed over the ranks and returned to the rank that computed each row."""

    sum_over_ranks: Callable[[torch.Tensor], torch.Tensor]
    gather: Callable[[torch.Tensor], torch.Tensor]
    gather_rows: Callable[[torch.Tensor, int], torch.Tensor]


@dataclass(frozen=True)
class ColumnShare:
    """This rank's ``columns`` of tables ``width`` wide, and the collectives that join the ranks' shares."""

    columns: slice
    width: int
    collectives: ColumnCollectives

    def own_columns(self, table: torch.Tensor) -> torch.Tensor:
        """This rank's columns of a ``[rows, width]`` table as a view (differentiable), or ``table`` itself when it
        holds only them already."""
        return table[:, self.columns] if table.shape[1] == self.width else table

    def of(self, table: torch.Tensor) -> torch.Tensor:
        """This rank's columns of a whole ``[rows, width]`` table as a copy of their own (a no-op on a table
        already split)."""
        columns = self.own_columns(table)
        return columns if columns is table else columns.clone()


@dataclass(frozen=True)
class Probe:
    """One of a model's mechanisms switched off with its trained weights otherwise kept (``mdrchca probe``):
    ``apply(model, draw)`` changes a copy of the trained model in place; a ``random`` probe draws new weights
    and is measured over several draws, ``draw`` seeding each."""

    name: str
    apply: Callable[[Recommender, int], None]
    random: bool = False


class Recommender(nn.Module):
    """Base class of every model (MMRec's one-file-per-model contract).

    A model answers two questions: :meth:`loss` (the training loss of a batch of triples) and
    :meth:`score_all` (the scores of a batch of users against every item). Models with a cheap
    user / item factorisation implement :meth:`embeddings` and inherit the rest: in eval mode the
    item representations are computed once per evaluation and reused for every user batch.

    Hooks for models that need more than plain steps, all called by the shared trainer:
    :meth:`on_epoch_start` (e.g. a graph rebuilt or an edge dropout redrawn each epoch) and
    :meth:`after_step` (e.g. a momentum target network or thresholds updated after each optimiser step).
    """

    name: ClassVar[str] = ""
    config_class: ClassVar[type[ModelConfig]] = ModelConfig
    train_defaults: ClassVar[dict[str, object]] = {}
    """Trainer settings this model's reference implementation uses by default (e.g. its learning rate);
    applied before any config file or override."""
    search_space: ClassVar[dict[str, SearchParam]] = {}
    """What ``mdrchca tune`` searches for this model, on top of the learning rate every model gets
    (:data:`~mdrchca.config.COMMON_SEARCH_SPACE`): its regularisation, depth and own options."""
    ablations: ClassVar[dict[str, tuple[str, ...]]] = {}
    """Variants that ``mdrchca ablate`` compares (label -> config overrides), the full model first."""
    batch_separable: ClassVar[bool] = True
    """Whether :meth:`loss` is a mean over the batch's triples plus terms of the weights alone, so that one
    training on several processes (each on its share of the batch) follows the one-process gradients exactly.
    False for a loss that compares the triples of a batch with each other (in-batch contrastive negatives, a
    norm over the batch)."""
    column_parallel: ClassVar[tuple[str, ...]] = ()
    """The parameters (``[rows, width]`` tables) a model splits by columns across the ranks of a training with
    ``parallel=columns`` (:meth:`share_columns`); empty for a model that cannot. Every other parameter stays
    whole on every rank, and the model's loss must give each rank a share of its gradient: the trainer sums
    those over the ranks before each step."""
    rank_local_buffers: ClassVar[tuple[str, ...]] = ()
    """Persistent buffers each rank of a several-process training keeps as its own instead of taking rank 0's
    before every step (a cache each rank updates for the items of its share)."""

    def __init__(self, dataset: RecDataset, config: ModelConfig) -> None:
        super().__init__()
        check_options(config)
        self.config = config
        self.n_users = dataset.n_users
        self.n_items = dataset.n_items
        self._scoring_cache: tuple[torch.Tensor, torch.Tensor] | None = None
        self.column_share: ColumnShare | None = None

    # -- the contract ---------------------------------------------------------------------------
    def loss(self, batch: Batch) -> torch.Tensor:
        """Scalar training loss of one batch."""
        raise NotImplementedError

    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Final user ``[M, d]`` and item ``[N, d]`` representations whose inner product is the score."""
        raise NotImplementedError

    def score_all(self, users: torch.Tensor) -> torch.Tensor:
        """Scores ``[len(users), N]`` of each user against every item."""
        user_emb, item_emb = self.scoring_embeddings()
        return user_emb[users] @ item_emb.T

    # -- helpers --------------------------------------------------------------------------------
    def scoring_embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`embeddings`, computed once and cached while the model is in eval mode."""
        if self.training:
            return self.embeddings()
        if self._scoring_cache is None:
            with torch.no_grad():
                self._scoring_cache = self.embeddings()
        return self._scoring_cache

    def train(self, mode: bool = True) -> Recommender:
        self._scoring_cache = None
        return super().train(mode)

    def on_epoch_start(self, epoch: int) -> None:
        """Called by the trainer before each training epoch."""

    def epoch_log(self) -> dict[str, float]:
        """Model diagnostics of the epoch just trained (e.g. MDR-CHCA's confidence screen), one ``log.csv``
        column each; empty by default."""
        return {}

    def after_step(self) -> None:
        """Called by the trainer after each optimiser step."""

    def share_batch(self, rank: int, world_size: int, gather: RowGather | None = None) -> None:
        """Called once by a training on ``world_size`` processes: this rank steps on its share of every batch
        (a model with a per-step budget divides it here). ``gather(rows, total)`` returns, on every rank, the
        ``total`` rows in one-process order from each rank's rows ``rank, rank + N, ...``: a model may split
        work without gradients (e.g. every item's content for scoring) by it, provided every rank calls it at
        the same point. Nothing by default."""

    def share_columns(self, rank: int, world_size: int, columns: ColumnCollectives) -> None:
        """Called once by a training with ``parallel=columns``: keep only this rank's contiguous share of the
        columns of each :attr:`column_parallel` table (``torch.tensor_split``'s). The model's loss then scores
        the whole batch on its columns and sums the partial scores with ``columns.sum_over_ranks``; its
        :meth:`embeddings` gather the whole tables' rows with ``columns.gather``; and its state dict holds whole
        tables, gathered on save and sliced on load, so checkpoints do not depend on the number of ranks."""
        if not self.column_parallel:
            raise ConfigError(f"{self.name} cannot split its columns across processes; use parallel=batch")
        width = getattr(self, self.column_parallel[0]).shape[1]
        share = torch.arange(width).tensor_split(world_size)[rank]
        kept = slice(int(share[0]), int(share[-1]) + 1)
        for name in self.column_parallel:
            setattr(self, name, nn.Parameter(getattr(self, name).detach()[:, kept].clone()))
        self.column_share = ColumnShare(kept, width, columns)

    def bpr_and_terms(
        self,
        users: torch.Tensor,
        pos_items: torch.Tensor,
        neg_items: torch.Tensor,
        terms: Callable[[], torch.Tensor],
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """BPR on the inner products of the batch's rows ``[B, d]``, and ``terms()``, a vector of the loss's
        other additive terms (penalties), computed after the scores, which keeps the order in which gradients
        accumulate, and so the bits, of the losses written before this helper. With ``parallel=columns`` the
        rows and the terms are this rank's share of them: the partial scores and terms are summed over the ranks
        (one all-reduce of :math:`2B` numbers and the terms), and every rank then computes the same loss."""
        if self.column_share is None:
            return bpr_on_embeddings(users, pos_items, neg_items), terms()
        n = len(users)
        partial = torch.cat([(users * pos_items).sum(-1), (users * neg_items).sum(-1), terms()])
        total = self.column_share.collectives.sum_over_ranks(partial)
        return bpr_loss(total[:n], total[n : 2 * n]), total[2 * n :]

    def whole_columns(self, users: torch.Tensor, items: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``users`` and ``items`` as they are, or with ``parallel=columns`` every rank's columns of them."""
        if self.column_share is None:
            return users, items
        gather = self.column_share.collectives.gather
        return gather(users), gather(items)

    def _save_to_state_dict(self, destination, prefix, keep_vars) -> None:  # type: ignore[override]
        super()._save_to_state_dict(destination, prefix, keep_vars)
        if self.column_share is not None:
            for name in self.column_parallel:
                destination[prefix + name] = self.column_share.collectives.gather(destination[prefix + name])

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:  # type: ignore[override]
        if self.column_share is not None:
            for key in (prefix + name for name in self.column_parallel):
                if key in state_dict and state_dict[key].dim() == 2:
                    state_dict[key] = self.column_share.of(state_dict[key])
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def probes(self) -> list[Probe]:
        """The model's mechanisms that ``mdrchca probe`` can switch off one at a time (none by default)."""
        return []

    def init_id_embeddings(self, user_dim: int, item_dim: int | None = None) -> None:
        """Xavier-initialised ID embeddings ``user_embedding [M, user_dim]`` and ``item_embedding [N, item_dim]``."""
        self.user_embedding = nn.Parameter(nn.init.xavier_uniform_(torch.empty(self.n_users, user_dim)))
        self.item_embedding = nn.Parameter(nn.init.xavier_uniform_(torch.empty(self.n_items, item_dim or user_dim)))

    def init_user_item_graph(self, dataset: RecDataset, edge_dropout: float = 0.0) -> None:
        """Registers ``adjacency``, the normalised training graph of LightGCN, and keeps its edges so that
        :meth:`draw_training_graph` can prune a share ``edge_dropout`` of them each epoch."""
        if not 0.0 <= edge_dropout < 1.0:
            raise ConfigError(f"edge_dropout must be in [0, 1), not {edge_dropout}")
        train = dataset.matrix("train").tocoo()
        self.register_buffer("adjacency", to_torch_sparse(symmetric_normalized_adjacency(train)), persistent=False)
        self.edges = np.vstack([train.row, train.col]).astype(np.int64)
        self.edge_dropout = edge_dropout
        self.train_adjacency: torch.Tensor | None = None

    def draw_training_graph(self) -> None:
        """This epoch's training graph: the edges left after degree-sensitive pruning (FREEDOM's), or the
        full graph when ``edge_dropout`` is 0. Call from :meth:`on_epoch_start`."""
        if self.edge_dropout > 0:
            self.train_adjacency = degree_sensitive_dropout_adjacency(
                self.edges, self.edge_dropout, self.n_users, self.n_items, self.adjacency.device
            )

    def user_item_graph(self) -> torch.Tensor:
        """The graph to propagate over: this epoch's pruned graph in training, the full one in eval mode
        (scoring always sees every training edge)."""
        if self.training and self.train_adjacency is not None:
            return self.train_adjacency
        return self.adjacency

    def require_features(self, dataset: RecDataset) -> None:
        """One clear error when a multimodal model gets a dataset without item features."""
        if not dataset.features:
            raise DataError(
                f"{dataset.path}: {type(self).__name__} needs item features (<modality>_feat.npy or features/); "
                "extract them with mdrchca features"
            )

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device


MODEL_REGISTRY: dict[str, type[Recommender]] = {}


def register(cls: type[Recommender]) -> type[Recommender]:
    """Class decorator: make a model available by its lower-case ``name``."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} needs a name")
    MODEL_REGISTRY[cls.name] = cls
    register_model_config(cls.name, cls.config_class, cls.train_defaults, cls.search_space, cls.ablations)
    return cls
