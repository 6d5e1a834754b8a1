"""The slots a catalogue's items fill, the slots the pass's chunks span, and where the trimmed content differs from
every slot's (a throwaway kept beside its output). For each dataset: quantiles of each modality's reach (last real
slot + 1), the token slots of the pass's chunks of 64 in slot order, and, on an untrained model (seed 0), the items
whose fused content by the trimmed pass differs from the pass over every slot by more than 1e-5, with the two
attention weights tied at the k_s-th place in the worst one's image side when that is the cause.

    python docs/results/padding-s23/slots_and_ties.py data/ml100k-64 data/bundled
"""

import sys

import torch

import mdrchca.models  # noqa: F401
from mdrchca.config import Config
from mdrchca.data.dataset import load_dataset
from mdrchca.models.mdrchca.alignment import align
from mdrchca.models.mdrchca.content import ModalityInput, last_real_position
from mdrchca.training.trainer import build_model

torch.set_num_threads(1)
for path in sys.argv[1:]:
    config = Config.load("mdrchca", overrides=["device=cpu", "num_threads=1"])
    data = load_dataset(path, config.data)
    print(f"== {path}")
    for name, features in data.features.items():
        reach = last_real_position(features.mask).float()
        q = torch.quantile(reach, torch.tensor([0.0, 0.1, 0.5, 0.9, 1.0])).tolist()
        print(f"{name}: {features.max_length} slots; reach min, 10%, median, 90%, max: {q}")
    torch.manual_seed(0)
    model = build_model(config, data).train()
    branch = model.content_branch
    spans = [int(branch.text.reach[c].max()) for c in branch.slot_order(torch.arange(data.n_items)).split(64)]
    print(f"token slots of the pass's chunks of 64: {spans}, mean {sum(spans) / len(spans):.1f}")
    with torch.no_grad():
        trimmed = model.all_fused_content()
        original = ModalityInput.slots
        ModalityInput.slots = lambda self, items: self.mask.shape[1]
        every = model.all_fused_content()
        ModalityInput.slots = original
    difference = (trimmed - every).abs().amax(1)
    worst = int(difference.argmax())
    print(
        f"items differing by more than 1e-5: {int((difference > 1e-5).sum())} of {data.n_items}; "
        f"largest {float(difference.max()):.3g} (item {worst})"
    )
    items = torch.tensor([worst])
    with torch.no_grad():
        a = branch(items, None, model.thresholds)
        b = branch(items, None, model.thresholds, trim=False)
        region = int((a.region_aligned - b.region_aligned).abs().amax(-1)[0].argmax())
        for trim in (True, False):
            positions = branch._denoised_inputs(items, None, trim).positions
            out = align(branch.text_to_region, branch.region_to_text, positions, branch._plan()).region
            top = out.weights[0, region].topk(branch.region_to_text.k_s + 1)
            print(
                f"  trim={trim}: region {region}, image side over {out.weights.shape[-1]} columns, top weights "
                f"{[f'{v:.17g}' for v in top.values.tolist()]} "
                f"at tokens {out.candidates[0, region][top.indices].tolist()}"
            )
