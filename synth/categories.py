"""The four object classes of the synthetic scenes, with their COCO ids."""

PERSON = 1
CAR = 2
BICYCLE = 3
DOG = 4

# COCO "categories" entries; ids and names are fixed because trained models and
# evaluation files refer to them.
CATEGORIES: tuple[dict[str, object], ...] = (
    {"id": PERSON, "name": "person", "supercategory": "person"},
    {"id": CAR, "name": "car", "supercategory": "vehicle"},
    {"id": BICYCLE, "name": "bicycle", "supercategory": "vehicle"},
    {"id": DOG, "name": "dog", "supercategory": "animal"},
)

NAMES: dict[int, str] = {int(c["id"]): str(c["name"]) for c in CATEGORIES}  # type: ignore[call-overload]
