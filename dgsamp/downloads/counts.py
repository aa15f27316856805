"""Published image counts per domain (and per class where a reliable list exists), as data.

Where the counts come from:

- PACS: the complete release (9,991 images; Li et al., ICCV 2017), counted per class in the
  full copy at ``shared/data/pacs128`` (art_painting 2,048, cartoon 2,344, photo 1,670,
  sketch 3,929: the totals the paper reports).
- Office-Home (15,588), Office-31 (4,110) and VisDA-2017 validation (55,388): the image lists
  of thuml/CDAN @ c904cd3f2fe092bb5175be1c5b6e42fa2036dece (``data/office-home/*.txt``,
  ``data/office/*_list.txt``, ``data/visda-2017/validation_list.txt``), counted per class
  folder; their totals equal the published ones (Art 2,427, Clipart 4,365, Product 4,439,
  Real World 4,357; amazon 2,817, dslr 498, webcam 795).
- VisDA-2017 train: the total only (152,397 synthetic images; Peng et al., arXiv:1710.06924).
- VLCS: per-domain totals only (10,729 images as in DomainBed's paper: Caltech101 1,415,
  LabelMe 2,656, SUN09 3,282, VOC2007 3,376).
- TerraIncognita: per-location totals only, those of DomainBed's paper (24,788; location_100
  4,879, location_38 9,767, location_43 4,020, location_46 6,122, as khanrc/miro#9 lists them).
  Builds from today's LILA release are known to come out smaller (24,330 reported in
  facebookresearch/DomainBed#58), so a mismatch there is expected; ``note`` says so.
- DomainNet: per-domain totals of the DomainNet paper (586,575; Peng et al., ICCV 2019), the
  figure DomainBed quotes. DomainBed's tree is the cleaned clipart/painting archives minus its
  duplicates list, which need not match them exactly; ``note`` says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class KnownCounts:
    """Expected images per domain (``domains``) and, where known, per domain and class (``classes``).

    Domain ``d`` lives in ``<data_dir>/<target>/<d>/<domain_subdir>/<class>/``.
    """

    target: str
    domains: dict[str, int]
    classes: dict[str, dict[str, int]] = field(default_factory=dict)
    domain_subdir: str = ""
    source: str = ""
    note: str = ""


PACS_CLASSES = {
    'art_painting': {
        'dog': 379, 'elephant': 255, 'giraffe': 285, 'guitar': 184, 'horse': 201, 'house': 295,
        'person': 449,
    },
    'cartoon': {
        'dog': 389, 'elephant': 457, 'giraffe': 346, 'guitar': 135, 'horse': 324, 'house': 288,
        'person': 405,
    },
    'photo': {
        'dog': 189, 'elephant': 202, 'giraffe': 182, 'guitar': 186, 'horse': 199, 'house': 280,
        'person': 432,
    },
    'sketch': {
        'dog': 772, 'elephant': 740, 'giraffe': 753, 'guitar': 608, 'horse': 816, 'house': 80,
        'person': 160,
    },
}

OFFICE_HOME_CLASSES = {
    'Art': {
        'Alarm_Clock': 74, 'Backpack': 41, 'Batteries': 27, 'Bed': 40, 'Bike': 75, 'Bottle': 99,
        'Bucket': 40, 'Calculator': 33, 'Calendar': 20, 'Candles': 76, 'Chair': 69, 'Clipboards': 25,
        'Computer': 44, 'Couch': 40, 'Curtains': 40, 'Desk_Lamp': 23, 'Drill': 15, 'Eraser': 18,
        'Exit_Sign': 21, 'Fan': 45, 'File_Cabinet': 22, 'Flipflops': 46, 'Flowers': 90, 'Folder': 20,
        'Fork': 46, 'Glasses': 40, 'Hammer': 40, 'Helmet': 79, 'Kettle': 46, 'Keyboard': 18, 'Knives': 72,
        'Lamp_Shade': 49, 'Laptop': 51, 'Marker': 20, 'Monitor': 42, 'Mop': 32, 'Mouse': 18, 'Mug': 49,
        'Notebook': 21, 'Oven': 20, 'Pan': 19, 'Paper_Clip': 19, 'Pen': 20, 'Pencil': 26,
        'Postit_Notes': 19, 'Printer': 18, 'Push_Pin': 24, 'Radio': 47, 'Refrigerator': 49, 'Ruler': 15,
        'Scissors': 20, 'Screwdriver': 30, 'Shelf': 42, 'Sink': 41, 'Sneakers': 46, 'Soda': 40,
        'Speaker': 20, 'Spoon': 46, 'TV': 40, 'Table': 16, 'Telephone': 44, 'ToothBrush': 43, 'Toys': 20,
        'Trash_Can': 21, 'Webcam': 16,
    },
    'Clipart': {
        'Alarm_Clock': 60, 'Backpack': 56, 'Batteries': 64, 'Bed': 98, 'Bike': 99, 'Bottle': 99,
        'Bucket': 73, 'Calculator': 46, 'Calendar': 78, 'Candles': 99, 'Chair': 99, 'Clipboards': 40,
        'Computer': 99, 'Couch': 64, 'Curtains': 42, 'Desk_Lamp': 41, 'Drill': 48, 'Eraser': 40,
        'Exit_Sign': 41, 'Fan': 50, 'File_Cabinet': 40, 'Flipflops': 40, 'Flowers': 99, 'Folder': 99,
        'Fork': 61, 'Glasses': 52, 'Hammer': 99, 'Helmet': 69, 'Kettle': 40, 'Keyboard': 99, 'Knives': 53,
        'Lamp_Shade': 40, 'Laptop': 99, 'Marker': 71, 'Monitor': 99, 'Mop': 40, 'Mouse': 76, 'Mug': 99,
        'Notebook': 83, 'Oven': 40, 'Pan': 51, 'Paper_Clip': 40, 'Pen': 99, 'Pencil': 99,
        'Postit_Notes': 41, 'Printer': 87, 'Push_Pin': 40, 'Radio': 46, 'Refrigerator': 40, 'Ruler': 67,
        'Scissors': 99, 'Screwdriver': 75, 'Shelf': 42, 'Sink': 42, 'Sneakers': 43, 'Soda': 61,
        'Speaker': 90, 'Spoon': 60, 'TV': 99, 'Table': 80, 'Telephone': 99, 'ToothBrush': 39, 'Toys': 99,
        'Trash_Can': 53, 'Webcam': 40,
    },
    'Product': {
        'Alarm_Clock': 79, 'Backpack': 99, 'Batteries': 62, 'Bed': 43, 'Bike': 44, 'Bottle': 62,
        'Bucket': 47, 'Calculator': 81, 'Calendar': 81, 'Candles': 56, 'Chair': 99, 'Clipboards': 65,
        'Computer': 96, 'Couch': 88, 'Curtains': 75, 'Desk_Lamp': 83, 'Drill': 67, 'Eraser': 41,
        'Exit_Sign': 67, 'Fan': 58, 'File_Cabinet': 71, 'Flipflops': 99, 'Flowers': 91, 'Folder': 90,
        'Fork': 41, 'Glasses': 67, 'Hammer': 57, 'Helmet': 90, 'Kettle': 72, 'Keyboard': 99, 'Knives': 41,
        'Lamp_Shade': 54, 'Laptop': 99, 'Marker': 56, 'Monitor': 98, 'Mop': 72, 'Mouse': 96, 'Mug': 41,
        'Notebook': 93, 'Oven': 68, 'Pan': 70, 'Paper_Clip': 47, 'Pen': 60, 'Pencil': 40,
        'Postit_Notes': 38, 'Printer': 99, 'Push_Pin': 43, 'Radio': 43, 'Refrigerator': 59, 'Ruler': 58,
        'Scissors': 99, 'Screwdriver': 40, 'Shelf': 49, 'Sink': 46, 'Sneakers': 99, 'Soda': 43,
        'Speaker': 99, 'Spoon': 47, 'TV': 76, 'Table': 60, 'Telephone': 58, 'ToothBrush': 42, 'Toys': 45,
        'Trash_Can': 93, 'Webcam': 98,
    },
    'Real World': {
        'Alarm_Clock': 86, 'Backpack': 99, 'Batteries': 64, 'Bed': 83, 'Bike': 99, 'Bottle': 78,
        'Bucket': 80, 'Calculator': 73, 'Calendar': 68, 'Candles': 99, 'Chair': 96, 'Clipboards': 65,
        'Computer': 64, 'Couch': 76, 'Curtains': 73, 'Desk_Lamp': 62, 'Drill': 51, 'Eraser': 43,
        'Exit_Sign': 81, 'Fan': 60, 'File_Cabinet': 58, 'Flipflops': 85, 'Flowers': 75, 'Folder': 57,
        'Fork': 36, 'Glasses': 60, 'Hammer': 52, 'Helmet': 60, 'Kettle': 72, 'Keyboard': 75, 'Knives': 83,
        'Lamp_Shade': 78, 'Laptop': 67, 'Marker': 23, 'Monitor': 71, 'Mop': 46, 'Mouse': 60, 'Mug': 58,
        'Notebook': 68, 'Oven': 64, 'Pan': 30, 'Paper_Clip': 68, 'Pen': 65, 'Pencil': 59,
        'Postit_Notes': 67, 'Printer': 52, 'Push_Pin': 53, 'Radio': 66, 'Refrigerator': 75, 'Ruler': 41,
        'Scissors': 77, 'Screwdriver': 51, 'Shelf': 66, 'Sink': 77, 'Sneakers': 88, 'Soda': 63,
        'Speaker': 81, 'Spoon': 54, 'TV': 53, 'Table': 59, 'Telephone': 82, 'ToothBrush': 85, 'Toys': 67,
        'Trash_Can': 81, 'Webcam': 49,
    },
}

OFFICE31_CLASSES = {
    'amazon': {
        'back_pack': 92, 'bike': 82, 'bike_helmet': 72, 'bookcase': 82, 'bottle': 36, 'calculator': 94,
        'desk_chair': 91, 'desk_lamp': 97, 'desktop_computer': 97, 'file_cabinet': 81, 'headphones': 99,
        'keyboard': 100, 'laptop_computer': 100, 'letter_tray': 98, 'mobile_phone': 100, 'monitor': 99,
        'mouse': 100, 'mug': 94, 'paper_notebook': 96, 'pen': 95, 'phone': 93, 'printer': 100,
        'projector': 98, 'punchers': 98, 'ring_binder': 90, 'ruler': 75, 'scissors': 100, 'speaker': 99,
        'stapler': 99, 'tape_dispenser': 96, 'trash_can': 64,
    },
    'dslr': {
        'back_pack': 12, 'bike': 21, 'bike_helmet': 24, 'bookcase': 12, 'bottle': 16, 'calculator': 12,
        'desk_chair': 13, 'desk_lamp': 14, 'desktop_computer': 15, 'file_cabinet': 15, 'headphones': 13,
        'keyboard': 10, 'laptop_computer': 24, 'letter_tray': 16, 'mobile_phone': 31, 'monitor': 22,
        'mouse': 12, 'mug': 8, 'paper_notebook': 10, 'pen': 10, 'phone': 13, 'printer': 15, 'projector': 23,
        'punchers': 18, 'ring_binder': 10, 'ruler': 7, 'scissors': 18, 'speaker': 26, 'stapler': 21,
        'tape_dispenser': 22, 'trash_can': 15,
    },
    'webcam': {
        'back_pack': 29, 'bike': 21, 'bike_helmet': 28, 'bookcase': 12, 'bottle': 16, 'calculator': 31,
        'desk_chair': 40, 'desk_lamp': 18, 'desktop_computer': 21, 'file_cabinet': 19, 'headphones': 27,
        'keyboard': 27, 'laptop_computer': 30, 'letter_tray': 19, 'mobile_phone': 30, 'monitor': 43,
        'mouse': 30, 'mug': 27, 'paper_notebook': 28, 'pen': 32, 'phone': 16, 'printer': 20,
        'projector': 30, 'punchers': 27, 'ring_binder': 40, 'ruler': 11, 'scissors': 25, 'speaker': 30,
        'stapler': 24, 'tape_dispenser': 23, 'trash_can': 21,
    },
}

VISDA2017_CLASSES = {
    'validation': {
        'aeroplane': 3646, 'bicycle': 3475, 'bus': 4690, 'car': 10401, 'horse': 4691, 'knife': 2075,
        'motorcycle': 5796, 'person': 4000, 'plant': 4549, 'skateboard': 2281, 'train': 4236, 'truck': 5548,
    },
}


KNOWN_COUNTS: dict[str, KnownCounts] = {
    "PACS": KnownCounts(
        "PACS", {"art_painting": 2048, "cartoon": 2344, "photo": 1670, "sketch": 3929}, PACS_CLASSES,
        source="the complete PACS release, counted per class",
    ),
    "OfficeHome": KnownCounts(
        "office_home", {"Art": 2427, "Clipart": 4365, "Product": 4439, "Real World": 4357},
        OFFICE_HOME_CLASSES, source="thuml/CDAN image lists (totals as published)",
    ),
    "VLCS": KnownCounts(
        "VLCS", {"Caltech101": 1415, "LabelMe": 2656, "SUN09": 3282, "VOC2007": 3376},
        source="DomainBed's paper (per-domain totals only)",
    ),
    "TerraIncognita": KnownCounts(
        "terra_incognita",
        {"location_100": 4879, "location_38": 9767, "location_43": 4020, "location_46": 6122},
        source="DomainBed's paper, per location as in khanrc/miro#9 (per-domain totals only)",
        note="today's LILA release is known to give fewer images (24,330 in DomainBed#58) than the paper's 24,788",
    ),
    "DomainNet": KnownCounts(
        "domain_net",
        {"clipart": 48129, "infograph": 51605, "painting": 72266, "quickdraw": 172500, "real": 172947,
         "sketch": 69128},
        source="the DomainNet paper (per-domain totals only)",
        note="DomainBed's tree (cleaned clipart/painting, duplicates removed) may differ from the paper's counts",
    ),
    "Office31": KnownCounts(
        "office31", {"amazon": 2817, "dslr": 498, "webcam": 795}, OFFICE31_CLASSES, domain_subdir="images",
        source="thuml/CDAN image lists (totals as published)",
    ),
    "VisDA2017": KnownCounts(
        "visda2017", {"train": 152397, "validation": 55388}, VISDA2017_CLASSES,
        source="the VisDA-2017 paper (train: total only) and thuml/CDAN's validation list",
    ),
}
