"""Full-ranking evaluation and the ranking metrics."""

from mdrchca.evaluation.evaluator import Evaluator
from mdrchca.evaluation.metrics import per_user_metrics
from mdrchca.evaluation.ranking import topk_items

__all__ = ["Evaluator", "per_user_metrics", "topk_items"]
