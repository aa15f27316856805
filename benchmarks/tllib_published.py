"""tllib's published unsupervised-DA accuracies (%), as data, for comparison with dgsamp runs.

Transcribed from thuml/Transfer-Learning-Library
``examples/domain_adaptation/image_classification/README.md`` at commit c4aa59e (the tables
under "Experiment and Results"; the line of each table's header is noted). Those numbers come
from the command lines in the ``.sh`` files that ``dgsamp/config/tllib_recipe.py`` stores: one
run per task (seed as the ``.sh`` passes it), the best epoch by target accuracy; the README
says adversarial methods (DANN, ADDA, CDAN, MCD, BSP, MDD) are the mean of three runs on
Office-31 and VisDA-2017.

- ``PUBLISHED[dataset][method] = {task: accuracy}``; tasks are ``"source->target"`` and
  ``"Avg"`` is tllib's mean over the tasks. Office31 and OfficeHome: ResNet-50; DomainNet
  (single source): ResNet-101; VisDA2017 (ResNet-101): one task, ``Synthetic->Real``, scored as
  mean per-class accuracy (the README's "Mean" column).
- ``VISDA2017_PER_CLASS[method]``: the twelve per-class accuracies, ``Mean`` (their mean) and
  ``Avg`` (overall accuracy over all target images).
- ``ORIGINAL_PAPER[dataset][method]``: the README's "Origin" column (the method's own paper),
  where it gives one.

Method names are tllib's script names (``erm`` is the README's ERM row: source only).
Not transcribed: the ViT-B/16 Office-Home table, multi-source DomainNet and ImageNet-scale rows.
"""

from __future__ import annotations

SOURCE = ("thuml/Transfer-Learning-Library "
          "examples/domain_adaptation/image_classification/README.md @ c4aa59e")
TLLIB_COMMIT = "c4aa59eb565650a552b809411601d0589efbbfe4"
BACKBONE = {"Office31": "resnet50", "OfficeHome": "resnet50", "VisDA2017": "resnet101",
            "DomainNet": "resnet101"}
TABLE_LINE = {"Office31": 97, "OfficeHome": 114, "VisDA2017": 144, "DomainNet": 161}

VISDA2017_PER_CLASS: dict[str, dict[str, float]] = {  # README.md line 144
    "erm": {"plane": 63.6, "bcycl": 35.3, "bus": 50.6, "car": 78.2, "horse": 74.6, "knife": 18.7,
        "mcycl": 82.1, "person": 16.0, "plant": 84.2, "sktbrd": 35.5, "train": 77.4, "truck": 4.7,
        "Mean": 51.7, "Avg": 56.9},
    "dann": {"plane": 93.5, "bcycl": 74.3, "bus": 83.4, "car": 50.7, "horse": 87.2, "knife": 90.2,
        "mcycl": 89.9, "person": 76.1, "plant": 88.1, "sktbrd": 91.4, "train": 89.7, "truck": 39.8,
        "Mean": 79.5, "Avg": 74.9},
    "adda": {"plane": 95.6, "bcycl": 70.8, "bus": 84.4, "car": 54.0, "horse": 87.8, "knife": 75.8,
        "mcycl": 88.4, "person": 69.3, "plant": 84.1, "sktbrd": 86.2, "train": 85.0, "truck": 48.0,
        "Mean": 77.5, "Avg": 74.3},
    "bsp": {"plane": 95.7, "bcycl": 75.6, "bus": 82.8, "car": 54.5, "horse": 89.2, "knife": 96.5,
        "mcycl": 91.3, "person": 72.2, "plant": 88.9, "sktbrd": 88.7, "train": 88.0, "truck": 43.4,
        "Mean": 80.5, "Avg": 76.2},
    "dan": {"plane": 89.2, "bcycl": 37.2, "bus": 77.7, "car": 61.8, "horse": 81.7, "knife": 64.3,
        "mcycl": 90.6, "person": 61.4, "plant": 79.9, "sktbrd": 37.7, "train": 88.1, "truck": 27.4,
        "Mean": 66.4, "Avg": 67.2},
    "jan": {"plane": 96.3, "bcycl": 66.0, "bus": 82.0, "car": 44.1, "horse": 86.4, "knife": 70.3,
        "mcycl": 87.9, "person": 74.6, "plant": 83.0, "sktbrd": 64.6, "train": 84.5, "truck": 41.3,
        "Mean": 73.4, "Avg": 70.3},
    "cdan": {"plane": 94.0, "bcycl": 69.2, "bus": 78.9, "car": 57.0, "horse": 89.8, "knife": 94.9,
        "mcycl": 91.9, "person": 80.3, "plant": 86.8, "sktbrd": 84.9, "train": 85.0, "truck": 48.5,
        "Mean": 80.1, "Avg": 76.5},
    "mcd": {"plane": 87.8, "bcycl": 75.7, "bus": 84.2, "car": 78.1, "horse": 91.6, "knife": 95.3,
        "mcycl": 88.1, "person": 78.3, "plant": 83.4, "sktbrd": 64.5, "train": 84.8, "truck": 20.9,
        "Mean": 77.7, "Avg": 76.7},
    "afn": {"plane": 95.6, "bcycl": 56.2, "bus": 81.3, "car": 69.8, "horse": 93.0, "knife": 81.0,
        "mcycl": 93.4, "person": 74.1, "plant": 91.7, "sktbrd": 55.0, "train": 90.6, "truck": 18.1,
        "Mean": 75.0, "Avg": 74.4},
    "mdd": {"plane": 88.3, "bcycl": 62.8, "bus": 85.2, "car": 69.9, "horse": 91.9, "knife": 95.1,
        "mcycl": 94.4, "person": 81.2, "plant": 93.8, "sktbrd": 89.8, "train": 84.1, "truck": 47.9,
        "Mean": 82.0, "Avg": 79.8},
    "mcc": {"plane": 95.3, "bcycl": 85.8, "bus": 77.1, "car": 68.0, "horse": 93.9, "knife": 92.9,
        "mcycl": 84.5, "person": 79.5, "plant": 93.6, "sktbrd": 93.7, "train": 85.3, "truck": 53.8,
        "Mean": 83.6, "Avg": 80.4},
    "fixmatch": {"plane": 96.5, "bcycl": 76.6, "bus": 72.6, "car": 84.6, "horse": 96.3,
        "knife": 92.6, "mcycl": 90.5, "person": 81.8, "plant": 91.9, "sktbrd": 74.6, "train": 87.3,
        "truck": 8.6, "Mean": 79.5, "Avg": 78.4},
}

PUBLISHED: dict[str, dict[str, dict[str, float]]] = {
    "Office31": {  # README.md line 97
        "erm": {"A->W": 75.8, "D->W": 95.5, "W->D": 99.0, "A->D": 79.3, "D->A": 63.6, "W->A": 63.8,
            "Avg": 79.5},
        "dann": {"A->W": 91.4, "D->W": 97.9, "W->D": 100.0, "A->D": 83.6, "D->A": 73.3,
            "W->A": 70.4, "Avg": 86.1},
        "adda": {"A->W": 94.6, "D->W": 97.5, "W->D": 99.7, "A->D": 90.0, "D->A": 69.6, "W->A": 72.5,
            "Avg": 87.3},
        "bsp": {"A->W": 92.7, "D->W": 97.9, "W->D": 100.0, "A->D": 88.2, "D->A": 74.1, "W->A": 73.8,
            "Avg": 87.8},
        "dan": {"A->W": 84.2, "D->W": 98.4, "W->D": 100.0, "A->D": 87.3, "D->A": 66.9, "W->A": 65.2,
            "Avg": 83.7},
        "jan": {"A->W": 93.7, "D->W": 98.4, "W->D": 100.0, "A->D": 89.4, "D->A": 69.2, "W->A": 71.0,
            "Avg": 87.0},
        "cdan": {"A->W": 93.8, "D->W": 98.5, "W->D": 100.0, "A->D": 89.9, "D->A": 73.4,
            "W->A": 70.4, "Avg": 87.7},
        "mcd": {"A->W": 90.4, "D->W": 98.5, "W->D": 100.0, "A->D": 87.3, "D->A": 68.3, "W->A": 67.6,
            "Avg": 85.4},
        "afn": {"A->W": 94.0, "D->W": 98.9, "W->D": 100.0, "A->D": 94.4, "D->A": 72.9, "W->A": 71.1,
            "Avg": 88.6},
        "mdd": {"A->W": 95.6, "D->W": 98.6, "W->D": 100.0, "A->D": 94.4, "D->A": 76.6, "W->A": 72.2,
            "Avg": 89.6},
        "mcc": {"A->W": 94.1, "D->W": 98.4, "W->D": 99.8, "A->D": 95.6, "D->A": 75.5, "W->A": 74.2,
            "Avg": 89.6},
        "fixmatch": {"A->W": 86.4, "D->W": 98.2, "W->D": 100.0, "A->D": 95.4, "D->A": 70.0,
            "W->A": 68.1, "Avg": 86.4},
    },
    "OfficeHome": {  # README.md line 114
        "erm": {"Ar->Cl": 41.1, "Ar->Pr": 65.9, "Ar->Rw": 73.7, "Cl->Ar": 53.1, "Cl->Pr": 60.1,
            "Cl->Rw": 63.3, "Pr->Ar": 52.2, "Pr->Cl": 36.7, "Pr->Rw": 71.8, "Rw->Ar": 64.8,
            "Rw->Cl": 42.6, "Rw->Pr": 75.2, "Avg": 58.4},
        "dan": {"Ar->Cl": 45.6, "Ar->Pr": 67.7, "Ar->Rw": 73.9, "Cl->Ar": 57.7, "Cl->Pr": 63.8,
            "Cl->Rw": 66.0, "Pr->Ar": 54.9, "Pr->Cl": 40.0, "Pr->Rw": 74.5, "Rw->Ar": 66.2,
            "Rw->Cl": 49.1, "Rw->Pr": 77.9, "Avg": 61.4},
        "dann": {"Ar->Cl": 53.8, "Ar->Pr": 62.6, "Ar->Rw": 74.0, "Cl->Ar": 55.8, "Cl->Pr": 67.3,
            "Cl->Rw": 67.3, "Pr->Ar": 55.8, "Pr->Cl": 55.1, "Pr->Rw": 77.9, "Rw->Ar": 71.1,
            "Rw->Cl": 60.7, "Rw->Pr": 81.1, "Avg": 65.2},
        "adda": {"Ar->Cl": 52.6, "Ar->Pr": 62.9, "Ar->Rw": 74.0, "Cl->Ar": 59.7, "Cl->Pr": 68.0,
            "Cl->Rw": 68.8, "Pr->Ar": 61.4, "Pr->Cl": 52.5, "Pr->Rw": 77.6, "Rw->Ar": 71.1,
            "Rw->Cl": 58.6, "Rw->Pr": 80.2, "Avg": 65.6},
        "jan": {"Ar->Cl": 50.8, "Ar->Pr": 71.9, "Ar->Rw": 76.5, "Cl->Ar": 60.6, "Cl->Pr": 68.3,
            "Cl->Rw": 68.7, "Pr->Ar": 60.5, "Pr->Cl": 49.6, "Pr->Rw": 76.9, "Rw->Ar": 71.0,
            "Rw->Cl": 55.9, "Rw->Pr": 80.5, "Avg": 65.9},
        "cdan": {"Ar->Cl": 55.2, "Ar->Pr": 72.4, "Ar->Rw": 77.6, "Cl->Ar": 62.0, "Cl->Pr": 69.7,
            "Cl->Rw": 70.9, "Pr->Ar": 62.4, "Pr->Cl": 54.3, "Pr->Rw": 80.5, "Rw->Ar": 75.5,
            "Rw->Cl": 61.0, "Rw->Pr": 83.8, "Avg": 68.8},
        "mcd": {"Ar->Cl": 51.7, "Ar->Pr": 72.2, "Ar->Rw": 78.2, "Cl->Ar": 63.7, "Cl->Pr": 69.5,
            "Cl->Rw": 70.8, "Pr->Ar": 61.5, "Pr->Cl": 52.8, "Pr->Rw": 78.0, "Rw->Ar": 74.5,
            "Rw->Cl": 58.4, "Rw->Pr": 81.8, "Avg": 67.8},
        "bsp": {"Ar->Cl": 54.7, "Ar->Pr": 67.7, "Ar->Rw": 76.2, "Cl->Ar": 61.0, "Cl->Pr": 69.4,
            "Cl->Rw": 70.9, "Pr->Ar": 60.9, "Pr->Cl": 55.2, "Pr->Rw": 80.2, "Rw->Ar": 73.4,
            "Rw->Cl": 60.3, "Rw->Pr": 81.2, "Avg": 67.6},
        "afn": {"Ar->Cl": 53.2, "Ar->Pr": 72.7, "Ar->Rw": 76.8, "Cl->Ar": 65.0, "Cl->Pr": 71.3,
            "Cl->Rw": 72.3, "Pr->Ar": 65.0, "Pr->Cl": 51.4, "Pr->Rw": 77.9, "Rw->Ar": 72.3,
            "Rw->Cl": 57.8, "Rw->Pr": 82.4, "Avg": 68.2},
        "mdd": {"Ar->Cl": 56.2, "Ar->Pr": 75.4, "Ar->Rw": 79.6, "Cl->Ar": 63.5, "Cl->Pr": 72.1,
            "Cl->Rw": 73.8, "Pr->Ar": 62.5, "Pr->Cl": 54.8, "Pr->Rw": 79.9, "Rw->Ar": 73.5,
            "Rw->Cl": 60.9, "Rw->Pr": 84.5, "Avg": 69.7},
        "mcc": {"Ar->Cl": 58.4, "Ar->Pr": 79.6, "Ar->Rw": 83.0, "Cl->Ar": 67.5, "Cl->Pr": 77.0,
            "Cl->Rw": 78.5, "Pr->Ar": 66.6, "Pr->Cl": 54.8, "Pr->Rw": 81.8, "Rw->Ar": 74.4,
            "Rw->Cl": 61.4, "Rw->Pr": 85.6, "Avg": 72.4},
        "fixmatch": {"Ar->Cl": 56.4, "Ar->Pr": 76.4, "Ar->Rw": 79.9, "Cl->Ar": 65.3, "Cl->Pr": 73.8,
            "Cl->Rw": 71.2, "Pr->Ar": 67.2, "Pr->Cl": 56.4, "Pr->Rw": 80.6, "Rw->Ar": 74.9,
            "Rw->Cl": 63.5, "Rw->Pr": 84.3, "Avg": 70.8},
    },
    "DomainNet": {  # README.md line 161
        "erm": {"c->p": 32.7, "c->r": 50.6, "c->s": 39.4, "p->c": 41.1, "p->r": 56.8, "p->s": 35.0,
            "r->c": 48.6, "r->p": 48.8, "r->s": 36.1, "s->c": 49.0, "s->p": 34.8, "s->r": 46.1,
            "Avg": 43.3},
        "dan": {"c->p": 38.8, "c->r": 55.2, "c->s": 43.9, "p->c": 45.9, "p->r": 59.0, "p->s": 40.8,
            "r->c": 50.8, "r->p": 49.8, "r->s": 38.9, "s->c": 56.1, "s->p": 45.9, "s->r": 55.5,
            "Avg": 48.4},
        "dann": {"c->p": 37.9, "c->r": 54.3, "c->s": 44.4, "p->c": 41.7, "p->r": 55.6, "p->s": 36.8,
            "r->c": 50.7, "r->p": 50.8, "r->s": 40.1, "s->c": 55.0, "s->p": 45.0, "s->r": 54.5,
            "Avg": 47.2},
        "jan": {"c->p": 40.5, "c->r": 56.7, "c->s": 45.1, "p->c": 47.2, "p->r": 59.9, "p->s": 43.0,
            "r->c": 54.2, "r->p": 52.6, "r->s": 41.9, "s->c": 56.6, "s->p": 46.2, "s->r": 55.5,
            "Avg": 50.0},
        "cdan": {"c->p": 40.4, "c->r": 56.8, "c->s": 46.1, "p->c": 45.1, "p->r": 58.4, "p->s": 40.5,
            "r->c": 55.6, "r->p": 53.6, "r->s": 43.0, "s->c": 57.2, "s->p": 46.4, "s->r": 55.7,
            "Avg": 49.9},
        "mcd": {"c->p": 37.5, "c->r": 52.9, "c->s": 44.0, "p->c": 44.6, "p->r": 54.5, "p->s": 41.6,
            "r->c": 52.0, "r->p": 51.5, "r->s": 39.7, "s->c": 55.5, "s->p": 44.6, "s->r": 52.0,
            "Avg": 47.5},
        "mdd": {"c->p": 42.9, "c->r": 59.5, "c->s": 47.5, "p->c": 48.6, "p->r": 59.4, "p->s": 42.6,
            "r->c": 58.3, "r->p": 53.7, "r->s": 46.2, "s->c": 58.7, "s->p": 46.5, "s->r": 57.7,
            "Avg": 51.8},
        "mcc": {"c->p": 37.7, "c->r": 55.7, "c->s": 42.6, "p->c": 45.4, "p->r": 59.8, "p->s": 39.9,
            "r->c": 54.4, "r->p": 53.1, "r->s": 37.0, "s->c": 58.1, "s->p": 46.3, "s->r": 56.2,
            "Avg": 48.9},
    },
    "VisDA2017": {method: {"Synthetic->Real": row["Mean"]}
                  for method, row in VISDA2017_PER_CLASS.items()},
}

ORIGINAL_PAPER: dict[str, dict[str, float]] = {
    "Office31": {"erm": 76.1, "dann": 82.2, "bsp": 87.7, "dan": 80.4, "jan": 84.3, "cdan": 87.7,
        "afn": 85.7, "mdd": 88.9, "mcc": 89.4},
    "OfficeHome": {"erm": 46.1, "dan": 56.3, "dann": 57.6, "jan": 58.3, "cdan": 65.8, "bsp": 64.9,
        "afn": 67.3, "mdd": 68.1},
    "VisDA2017": {"erm": 52.4, "dann": 57.4, "bsp": 75.9, "dan": 61.1, "mcd": 71.9, "afn": 76.1,
        "mcc": 78.8},
}
