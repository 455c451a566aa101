"""Training and evaluation of the detectors: COCO data, augmentation, COCO mAP."""
