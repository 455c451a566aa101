"""Shape drawing: object classes and clutter as vector parts, rasterized with OpenCV."""

from synth.shapes.clutter import sample_clutter
from synth.shapes.dog import DogLook, dog_parts, sample_dog
from synth.shapes.person import PersonLook, person_parts, sample_person
from synth.shapes.primitives import Part, Sprite, rasterize
from synth.shapes.vehicles import BicycleLook, CarLook, bicycle_parts, car_parts, sample_bicycle, sample_car

__all__ = [
    "BicycleLook", "CarLook", "DogLook", "Part", "PersonLook", "Sprite",
    "bicycle_parts", "car_parts", "dog_parts", "person_parts", "rasterize",
    "sample_bicycle", "sample_car", "sample_clutter", "sample_dog", "sample_person",
]
