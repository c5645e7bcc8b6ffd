"""NASRec's MFLOPs of its six published networks (config/nasrec) next to the figures NASRec published.

For each searched network (Criteo, Avazu, KDD × NASRec-Small, NASRec-Full) it prints our count in
NASRec's convention (``mflops_nasrec``: multiply-adds of what reaches the logit), the published
figure, their difference, and our flop counter's figure (``flops_2x_all_blocks``: 2 per multiply-add,
every block) in MFLOPs. Shapes alone, no data: it runs in a second.

    python bench/nasrec_flops.py
"""

from __future__ import annotations

from pathlib import Path

from sigeo.space.choice import Architecture
from sigeo.space.subnet import standalone_size

CONFIGS = Path(__file__).resolve().parents[1] / "config" / "nasrec"
#: (dense features, categorical features) of the three data sets.
FEATURES = {"criteo": (13, 26), "avazu": (1, 23), "kdd": (3, 10)}
#: NASRec's published MFLOPs of its final networks.
PUBLISHED = {
    ("criteo", "autoctr"): 2.20,
    ("criteo", "xlarge"): 1.45,
    ("avazu", "autoctr"): 3.08,
    ("avazu", "xlarge"): 1.87,
    ("kdd", "autoctr"): 3.48,
    ("kdd", "xlarge"): 1.09,
}
SPACE = {"autoctr": "Small", "xlarge": "Full"}


def main() -> None:
    print(f"{'network':<14} {'mflops_nasrec':>13} {'published':>9} {'diff':>7} {'2x all blocks':>13}")
    for (dataset, space), published in PUBLISHED.items():
        arch = Architecture.load(CONFIGS / f"ea_{dataset}_kaggle_{space}_best_1shot.json")
        size = standalone_size(arch, *FEATURES[dataset])
        ours = size["mflops_nasrec"]
        print(f"{dataset + ' ' + SPACE[space]:<14} {ours:>13.4f} {published:>9.2f} {ours - published:>+7.4f} "
              f"{size['flops_2x_all_blocks'] / 1e6:>13.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
